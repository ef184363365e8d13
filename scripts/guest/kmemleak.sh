#!/bin/sh
# Scan for leaks (twice: kmemleak reports an object only once it was seen
# unreferenced in two scans) and fail, printing them, if there are any.
echo scan >/sys/kernel/debug/kmemleak || exit 1
sleep 1
echo scan >/sys/kernel/debug/kmemleak || exit 1
leaks=$(cat /sys/kernel/debug/kmemleak)
[ -z "$leaks" ] && exit 0
echo "$leaks" | head -n 60
exit 1
