"""The live sidecar: each event's Redis stream → Server-Sent Events to browsers."""
