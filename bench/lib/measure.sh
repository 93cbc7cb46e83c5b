# Shared by the benchmark scripts: time one tool.
#
# measure TOOL RUNS DIR CLEANUP COMMAND — runs COMMAND (a bash command line) RUNS times, evaluating
# CLEANUP before each, with stdout in DIR/TOOL.out and stderr in DIR/TOOL.log; sets MEASURED_SECS
# (the median wall time, start-up included) and MEASURED_RSS_MB (the peak). Returns 1 when a run fails.
measure() {
    local tool="$1" runs="$2" dir="$3" cleanup="$4" command="$5" times=() rss=0 secs kb run
    for run in $(seq 1 "$runs"); do
        if [ -n "$cleanup" ]; then eval "$cleanup"; fi
        /usr/bin/time -f "%e %M" -o "$dir/time" bash -c "$command" >"$dir/$tool.out" 2>"$dir/$tool.log" \
            || { echo "[bench] $tool failed: $(tail -3 "$dir/$tool.log")" >&2; return 1; }
        read -r secs kb <"$dir/time"
        times+=("$secs"); [ "$kb" -gt "$rss" ] && rss=$kb
        echo "[bench] $tool run $run/$runs: ${secs} s" >&2
    done
    MEASURED_SECS=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    MEASURED_RSS_MB=$((rss / 1024))
}
