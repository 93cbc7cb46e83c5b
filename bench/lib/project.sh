# Shared by the benchmark scripts: the Sluice project every workload runs (the orders file with
# an explicitly typed schema) into the sink line the caller gives.
write_sluice_project() { # PROJECT INPUT FORMAT STATE_DIR SINK
    local project="$1" input="$2" format="$3" state="$4" sink="$5"
    cat >"$project" <<EOF
version: 1
state: "$state/state.db"
pipelines:
  orders:
    source: { type: files, path: "$input", format: $format, incremental: none }
    schema:
      columns:
        order_id: { type: int64, primary_key: true }
        customer_id: { type: int64 }
        email: { type: string }
        country: { type: string }
        amount: { type: "decimal(12,2)" }
        quantity: { type: int64 }
        status: { type: string }
        created_at: { type: timestamp }
        note: { type: string }
    sink: $sink
EOF
}
