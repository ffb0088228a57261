#!/usr/bin/env python3
"""Convert the public sources of kvsteer's data into its JSON Lines layout
(the layout of ../shared/data: eval/*.jsonl, traces/*.jsonl, traces/styles/*.jsonl).

usage: tools/convert_data.py traces LOCAL_DATA_DIR OUT_DIR
       tools/convert_data.py normalize IN.jsonl OUT.jsonl
       tools/convert_data.py gsm8k|arc|csqa IN.jsonl OUT.jsonl
       tools/convert_data.py piqa IN.jsonl LABELS.lst OUT.jsonl

`traces` reads the paper's released teacher traces (the local_data/ folder of
github.com/MaxBelitsky/cache-steering: one JSON file per trace) and writes
traces/{arc_challenge,csqa,gsm8k,piqa}.jsonl and traces/styles/arc_*.jsonl.
`normalize` re-serialises a file already in the layout (the path taken for a
local copy).  The evaluation-set converters read each set's published file.
Every file is written one JSON object per line, UTF-8, keys in the layout's
order, so that scripts/fetch_data.sh can check it against its sha256.
Standard library only.
"""
import glob
import json
import os
import re
import sys


def dump(rows, out):
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out)


def read_jsonl(path):
    # split on "\n" only: texts may hold U+2028 and other characters str.splitlines() breaks at
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f.read().split("\n") if l.strip()]


def split_query(q):
    """'Question: Q\\n\\nChoices:\\nA: x\\nB: y' -> (Q, [{label, text}] or None)."""
    if q.startswith("Question: "):
        q = q[len("Question: "):]
    if "\n\nChoices:\n" not in q:
        return q, None
    text, tail = q.split("\n\nChoices:\n", 1)
    text, tail = text.rstrip(), tail.rstrip()  # the layout keeps no whitespace at the ends
    choices = []
    for line in tail.split("\n"):
        m = re.match(r"^([A-Z0-9]+): (.*)$", line)
        if m:
            choices.append({"label": m.group(1), "text": m.group(2)})
        elif choices:  # a choice text running over a line break
            choices[-1]["text"] += "\n" + line
    return text, choices


def trace_row(sid, d, extra):
    q, choices = split_query(d.get("query", d.get("question", "")))
    row = {"source_id": sid, "question": q}
    if choices is not None:
        row["choices"] = choices
    row["steps"] = d["steps"]
    row["answer"] = str(d["solution"]).replace(",", "")  # "2,250" -> "2250", as the evaluation sets write numbers
    row.update(extra)
    return row


def traces(src, out):
    os.makedirs(os.path.join(out, "traces", "styles"), exist_ok=True)
    for task, name in [("arc", "arc_challenge"), ("csqa", "csqa"), ("gsm8k", "gsm8k"), ("piqa", "piqa")]:
        rows = []
        for p in glob.glob(os.path.join(src, f"{task}_oai", "*.json")):
            m = re.match(r"^(\d+)_+(.+?)(?:-\d{4}-\d{2}-\d{2})?(?:__\d+)?\.json$", os.path.basename(p))
            try:
                d = json.load(open(p, encoding="utf-8"))
            except ValueError:
                d = {}
            if not m or "steps" not in d:
                continue  # an empty or unparsable file is no trace (one piqa file upstream is empty)
            rows.append(trace_row(int(m.group(1)), d, {"teacher": m.group(2)}))
        rows.sort(key=lambda r: r["source_id"])
        dump(rows, os.path.join(out, "traces", name + ".jsonl"))
    for d in sorted(glob.glob(os.path.join(src, "arc_*"))):
        style = os.path.basename(d)[len("arc_"):]
        if style == "oai":
            continue
        rows = []
        for p in glob.glob(os.path.join(d, "*.json")):
            j = json.load(open(p, encoding="utf-8"))
            rows.append(trace_row(int(j["id"]), j, {"style": j["style_name"]}))
        rows.sort(key=lambda r: r["source_id"])
        dump(rows, os.path.join(out, "traces", "styles", f"arc_{style}.jsonl"))


def labelled(choices_text, labels):
    return [{"label": l, "text": t} for l, t in zip(labels, choices_text)]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd = argv[0]
    if cmd == "traces":
        traces(argv[1], argv[2])
    elif cmd == "normalize":
        dump(read_jsonl(argv[1]), argv[2])
    elif cmd == "gsm8k":  # openai/grade-school-math test.jsonl: question, answer ("steps\n#### N")
        rows = []
        for i, r in enumerate(read_jsonl(argv[1])):
            sol, ans = r["answer"].rsplit("\n#### ", 1)
            rows.append({"id": f"gsm8k-test-{i}", "question": r["question"], "solution": sol,
                         "answer": ans.strip().replace(",", "")})
        dump(rows, argv[2])
    elif cmd == "arc":  # AI2 ARC-Challenge-Test.jsonl: question.stem, question.choices, answerKey
        dump([{"id": f"arc_challenge_test-{i}", "question": r["question"]["stem"],
               "choices": [{"label": c["label"], "text": c["text"]} for c in r["question"]["choices"]],
               "answer": r["answerKey"]} for i, r in enumerate(read_jsonl(argv[1]))], argv[2])
    elif cmd == "csqa":  # CommonsenseQA dev_rand_split.jsonl: same shape as ARC
        dump([{"id": f"csqa_validation-{i}", "question": r["question"]["stem"],
               "choices": [{"label": c["label"], "text": c["text"]} for c in r["question"]["choices"]],
               "answer": r["answerKey"]} for i, r in enumerate(read_jsonl(argv[1]))], argv[2])
    elif cmd == "piqa":  # PIQA valid.jsonl (goal, sol1, sol2) and valid-labels.lst (0/1 per line)
        labels = [l.strip() for l in open(argv[2], encoding="utf-8") if l.strip()]
        dump([{"id": f"piqa_validation-{i}", "question": r["goal"],
               "choices": labelled([r["sol1"], r["sol2"]], ["A", "B"]), "answer": "AB"[int(labels[i])]}
              for i, r in enumerate(read_jsonl(argv[1]))], argv[3])
    else:
        sys.exit(f"convert_data.py: unknown conversion '{cmd}'")


if __name__ == "__main__":
    main(sys.argv[1:])
