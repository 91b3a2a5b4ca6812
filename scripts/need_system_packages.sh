#!/bin/sh
# Each argument is COMMAND:DEBIAN_PACKAGE. A command that is missing is installed from Debian's
# packages when we are root (CI, a container); otherwise we stop and say what to install.
missing=""
for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends $missing >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; } \
        || { echo "could not install:$missing" >&2; exit 1; }
    exit 0
fi
echo "missing:$missing (the tests need them). Install them with:" >&2
echo "  sudo apt-get install$missing" >&2
exit 1
