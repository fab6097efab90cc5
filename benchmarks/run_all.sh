#!/usr/bin/env bash
# Every speed benchmark at a bounded size on one device, merged into one JSON file.
#   bash benchmarks/run_all.sh cuda /tmp/bench      (writes /tmp/bench/benchmarks.json and one log per script)
set -u
device=${1:-cuda}
outdir=${2:-benchmarks/results/$device}
mkdir -p "$outdir/parts"
py=${PYTHON:-python3}
run() {  # name, then the script's arguments
  local name=$1; shift
  echo "== $name $*"
  timeout ${BENCH_TIMEOUT:-300} $py "benchmarks/$name.py" --device "$device" --out "$outdir/parts/$name.json" "$@" >"$outdir/parts/$name.log" 2>&1
  echo "   exit $? ($(tail -c 300 "$outdir/parts/$name.log" | tr '\n' ' ' | cut -c1-200))"
}
run full_path_smoke --steps 40
run ssl_speed --batch-size 512 --steps 30
run tobias_speed --arch resnet50 --size 224 --batch-size 32 --steps 4
run psol_speed --steps 5 --amp
run ssql_speed --steps 20 --encoder resnet18_small --resolution 32 --batch-size 512
run effssl_speed --steps 20
run vit2040_speed --steps 20 --stage pretrain
run fewshot_speed --repeats 2
run nrs_speed --steps 20 --datasets digits synthetic
run efpc_speed --steps 5 ${EFPC_MODEL:+--model $EFPC_MODEL}
$py - "$outdir" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
merged = {}
for f in sorted((out / "parts").glob("*.json")):
    try:
        merged[f.stem] = json.loads(f.read_text())
    except ValueError as e:
        merged[f.stem] = {"error": str(e)}
for f in sorted((out / "parts").glob("*.log")):
    merged.setdefault(f.stem, {})
    if isinstance(merged[f.stem], dict):
        merged[f.stem]["log_tail"] = f.read_text()[-1500:]
(out / "benchmarks.json").write_text(json.dumps(merged, indent=1))
print("wrote", out / "benchmarks.json")
PY
