#!/bin/sh
# Entry point of the bifrost-http container image.
#
# Contract (tested without a container engine by transports/http/tests/startup.rs, which
# runs this script with the same variables pointing at a temporary directory):
#   - APP_DIR (image default /app/config) is where the gateway looks for config.json, so
#       docker run -v $(pwd)/config.json:/app/config/config.json ... maximhq/bifrost
#     serves the mounted file.
#   - Without $APP_DIR/config.json, a config.json in $BIFROST_DATA_DIR (default /app/data,
#     the directory newer Bifrost images use) is served instead.
#   - Without either, the demo config shipped in the image ($BIFROST_DEMO_CONFIG, default
#     /app/demo/config.json) is served, and a line on stderr says so.
#   - A -config or -app-dir argument turns both fallbacks off: the caller chose.
#   - APP_PORT, APP_HOST, LOG_LEVEL and LOG_STYLE are read by bifrost-http itself as defaults
#     under its flags; arguments given to `docker run IMAGE ...` are passed to bifrost-http.
#   - BIFROST_BIN names the binary (default: bifrost-http on PATH).
set -eu

APP_DIR="${APP_DIR:-/app/config}"
export APP_DIR
DATA_DIR="${BIFROST_DATA_DIR:-/app/data}"
DEMO_CONFIG="${BIFROST_DEMO_CONFIG:-/app/demo/config.json}"
BIN="${BIFROST_BIN:-bifrost-http}"

chosen=no
for arg in "$@"; do
    case "$arg" in
        -config | --config | -config=* | --config=*) chosen=yes ;;
        -app-dir | --app-dir | -app-dir=* | --app-dir=*) chosen=yes ;;
    esac
done

if [ "$chosen" = no ] && [ ! -e "$APP_DIR/config.json" ]; then
    if [ -e "$DATA_DIR/config.json" ]; then
        echo "entrypoint: no $APP_DIR/config.json; serving $DATA_DIR/config.json" >&2
        APP_DIR="$DATA_DIR"
    elif [ -f "$DEMO_CONFIG" ]; then
        echo "entrypoint: no $APP_DIR/config.json mounted; serving the demo config $DEMO_CONFIG" >&2
        exec "$BIN" -config "$DEMO_CONFIG" "$@"
    else
        echo "entrypoint: no $APP_DIR/config.json mounted; providers come from *_API_KEY variables" >&2
    fi
fi

exec "$BIN" "$@"
