#!/usr/bin/env python3
"""Copy evaluation run files (kvsteer eval's JSONL) without their prompts,
merging the shards of one run into one file.

A run file's records hold the whole prompt, i.e. the evaluation question: others'
text, which stays out of the repository.  Everything else in a record is ours (the
model's response, the extracted answer, token counts, timings) and is all that
`kvsteer report`, `report --rescore --data DIR` and resuming a run need, so the
stripped copy can be kept under results/ and carried from one session to the next.

A file's summary line stays when it is the file's last line (a finished run): it
holds what the header does not (the model's file name, how the steering vector was
made), which `kvsteer report` shows and reads ablations from.

Several sources must hold one configuration (their headers' "config" equal, as
`--offset-start` shards of one run do); their samples go into DEST once each (the
first copy of a sample, keyed by id and seed, wins), without a summary: each
described one shard.  Resuming the merged file with the run's own `kvsteer eval`
command writes the summary of the whole (nothing is evaluated again).

Usage: tools/strip_prompts.py SRC.jsonl [SRC.jsonl ...] DEST.jsonl
       (DEST is written whole or not at all; it may be one of the sources)
"""
import json
import os
import sys


def records(path):
    """The JSON records of a run file; a last line cut off mid-record (a run
    stopped while writing) is dropped, since resuming redoes that sample."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                return
            raise ValueError(f"{path}:{n}: not a JSON record")


def main():
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(args) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    *srcs, dest = args
    header, seen, out, summary = None, set(), [], None
    try:
        for src in srcs:
            h = None
            for rec in records(src):
                summary = rec if rec.get("summary") else None
                if rec.get("header"):
                    if h is not None:
                        raise ValueError(f"{src}: a second header")
                    h = rec
                    if header is None:
                        header = rec
                    elif rec.get("config") != header.get("config"):
                        raise ValueError(f"{src}: another configuration than {srcs[0]}'s; only shards of one run merge")
                elif rec.get("summary"):
                    continue
                elif h is None:
                    raise ValueError(f"{src}: a sample before the header")
                elif "id" in rec:
                    key = (rec["id"], rec.get("seed"))
                    if key in seen:
                        continue
                    seen.add(key)
                    rec.pop("prompt", None)
                    out.append(rec)
            if h is None:
                raise ValueError(f"{src}: no header (not a kvsteer eval run file)")
    except OSError as e:
        print(f"strip_prompts: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"strip_prompts: {e}", file=sys.stderr)
        return 1
    tmp = dest + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in [header] + out + ([summary] if summary and len(srcs) == 1 else []):
                f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, dest)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f"strip_prompts: {e.filename or dest}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
