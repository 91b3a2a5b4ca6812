"""The contract shared by collector, sitegen and live. Imports none of them.

Empty on purpose: importing one module of core (say core.tail, in the live sidecar) loads only
what that module needs, never the archive and sqlite_utils."""
