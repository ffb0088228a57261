#!/usr/bin/env python3
"""Copy evaluation run files (kvsteer eval's JSONL) without their prompts.

A run file's records hold the whole prompt, i.e. the evaluation question: others'
text, which stays out of the repository.  Everything else in a record is ours (the
model's response, the extracted answer, token counts, timings) and is all that
`kvsteer report`, `report --rescore --data DIR` and resuming a run need, so the
stripped copy can be kept under results/ and carried from one session to the next.

Usage: tools/strip_prompts.py SRC.jsonl DEST.jsonl   (DEST is written whole or not at all)
"""
import json
import os
import sys


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(sys.argv) != 2 else sys.stdout)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    src, dest = sys.argv[1], sys.argv[2]
    tmp = dest + ".tmp"
    try:
        with open(src, encoding="utf-8") as f:
            lines = f.read().split("\n")
        with open(tmp, "w", encoding="utf-8") as out:
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    # a run stopped mid-record: resuming redoes that question, so drop it
                    if n == len(lines):
                        break
                    raise SystemExit(f"{src}:{n}: not a JSON record")
                rec.pop("prompt", None)
                out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, dest)
    except (OSError, SystemExit) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise SystemExit(f"{e.filename}: {e.strerror}" if isinstance(e, OSError) else e.code)


if __name__ == "__main__":
    main()
