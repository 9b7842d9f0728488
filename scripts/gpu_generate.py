"""The goals table of a `swimbench generate` run (issue 13, docs/generate.md), run by scripts/gpu_generate.sh:

    python3 scripts/gpu_generate.py summary RUN_DIR

The checks that ran here before (our dense model against MambaLMHeadModel, graph-replayed generation
against eager) are tests/gpu/test_generate.py.
"""
from __future__ import annotations

import sys

import pandas as pd



def summary(run: str) -> int:
    df = pd.read_csv(f"{run}/results.csv")
    ok = df[df["status"] == "ok"]
    ref = {(r.seq, r.batch): r for r in ok.itertuples() if r.variant == "dense"}
    theirs = {(r.seq, r.batch): r for r in ok.itertuples() if r.variant == "mamba_ssm"}
    lines = []
    for r in df.itertuples():
        d, m = ref.get((r.seq, r.batch)), theirs.get((r.seq, r.batch))
        good = r.status == "ok"
        lines.append({"variant": r.variant, "E": r.experts, "k": r.top_k, "prompt": r.seq, "b": r.batch,
                      "TTFT ms": round(r.ttft_ms, 2) if good else None,
                      "ms/token": round(r.token_ms, 3) if good else None,
                      "p90": round(r.token_ms_p90, 3) if good else None,
                      "x dense": round(r.token_ms / d.token_ms, 3) if good and d else None,
                      "x mamba_ssm": round(r.token_ms / m.token_ms, 3) if good and m else None,
                      "TTFT x mamba_ssm": round(r.ttft_ms / m.ttft_ms, 3) if good and m else None,
                      "tok/s": round(r.gen_tokens_per_s) if good else None,
                      "mJ/tok": round(r.gen_j_per_token * 1e3, 3) if good and pd.notna(r.gen_j_per_token) else None,
                      "peak GiB": round(r.gen_peak_mib / 1024, 1) if good and pd.notna(r.gen_peak_mib) else None,
                      "status": r.status})
    table = pd.DataFrame(lines)
    print(table.to_string(index=False))
    print("goals (issue 13): dense x mamba_ssm <= 0.9 per token; swimba E=8 x dense <= 1.2; dense TTFT x "
          "mamba_ssm <= 1.0")
    for r in lines:
        if r["variant"] == "dense" and r["x mamba_ssm"] is not None:
            print(f"  dense b={r['b']} prompt={r['prompt']}: per token {r['x mamba_ssm']}x mamba-ssm "
                  f"({'met' if r['x mamba_ssm'] <= 0.9 else 'NOT met'}), TTFT {r['TTFT x mamba_ssm']}x "
                  f"({'met' if r['TTFT x mamba_ssm'] <= 1.0 else 'NOT met'})")
        if r["variant"] == "swimba" and r["E"] == 8 and r["x dense"] is not None:
            print(f"  swimba E=8 k={r['k']} b={r['b']}: {r['x dense']}x dense "
                  f"({'met' if r['x dense'] <= 1.2 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["summary"] and len(sys.argv) == 3:
        sys.exit(summary(sys.argv[2]))
    sys.exit(__doc__)
