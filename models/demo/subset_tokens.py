#!/usr/bin/env python3
"""Writes the first N tokens of a RDLSTOK1 token file (cut after the last whole document) as a new token file.

The GPU machine's upload carries at most 64 MiB with the working tree, so step-1 runs there take a subset of the
demo train split: `python3 models/demo/subset_tokens.py .cache/tokens/train.bin .gpu/train-3m.bin 3000000`.
Standard library only (no numpy), so it runs on a fresh machine. Format: docs/token-file.md.
"""
import array
import struct
import sys


def main(source: str, target: str, limit: int) -> None:
    with open(source, 'rb') as f:
        header = f.read(64)
        magic, version, width, count, vocab, sep, _docs = struct.unpack('<8sIIQIIQ', header[:40])
        if magic != b'RDLSTOK1' or version != 1:
            sys.exit(f'{source}: not a version-1 token file')
        tokens = array.array('H' if width == 2 else 'I')
        tokens.frombytes(f.read(min(limit, count) * width))
    last = len(tokens) - 1
    while last >= 0 and tokens[last] != sep:
        last -= 1
    if last < 0:
        sys.exit(f'{source}: no whole document in the first {limit} tokens')
    tokens = tokens[:last + 1]
    documents = tokens.count(sep)
    with open(target + '.tmp', 'wb') as out:
        out.write(struct.pack('<8sIIQIIQ', magic, version, width, len(tokens), vocab, sep, documents) + bytes(24))
        out.write(tokens.tobytes())
    import os
    os.replace(target + '.tmp', target)
    print(f'{target}: {len(tokens):,} tokens, {documents:,} documents')


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit('usage: subset_tokens.py SOURCE.bin TARGET.bin MAX_TOKENS')
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
