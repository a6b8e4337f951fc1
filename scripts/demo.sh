#!/bin/sh
# Runs the example suite (examples/) against the default guest image.
#
# The image is built on first use (`provium image build`, reused afterwards)
# and examples/provium.toml is written from its output, so the profile's
# absolute paths always match this machine; that file is not committed.
# Exits with provium's status.
set -eu
cd "$(dirname "$0")/.."
PROVIUM=${PROVIUM:-bin/provium}
if [ ! -x "$PROVIUM" ]; then
	echo "demo: $PROVIUM not found; run 'make build' first" >&2
	exit 2
fi
config=examples/provium.toml
"$PROVIUM" image build >"$config.tmp" || {
	status=$?
	rm -f "$config.tmp"
	exit "$status"
}
mv "$config.tmp" "$config"
exec "$PROVIUM" --config "$config" examples/ "$@"
