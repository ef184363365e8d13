#!/usr/bin/env bash
# make soak: the randomized ABI driver for a long time in Bochs
# sapphire_rapids (both backends). SOAK_STEPS (default 10^5 per backend);
# KFSC_SEED replays a seed a failure printed.
source "$(dirname "$0")/lib.sh"
logs=$KFSC_ROOT/out/soak
kfsc_prepare "$logs"
steps=${SOAK_STEPS:-100000}
KFSC_BOCHS_TIMEOUT=${KFSC_BOCHS_TIMEOUT:-86400} \
	"$KFSC_ROOT/scripts/bochs-run.sh" soak sapphire_rapids "$logs" "kfsc.steps=$steps" || true
"$KFSC_ROOT/scripts/parse-results.sh" "$logs/soak.serial" soak
