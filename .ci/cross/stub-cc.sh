#!/bin/sh
# For the macOS type-check (no SDK here): every C/asm compile yields an empty object. Nothing
# is linked, so the C code's content does not matter. cc-rs's probes (-E, -?) go to the host
# compiler, so cc-rs sees a GNU cc.
out=
for a; do [ "$a" = -E ] && exec cc "$@"; done
for a; do [ -n "$prev" ] && out=$a && break; [ "$a" = -o ] && prev=1; done
[ -n "$out" ] || exec cc "$@"
exec cc -c -x c /dev/null -o "$out"
