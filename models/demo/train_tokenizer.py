#!/usr/bin/env python3
"""Train the demo teacher's byte-level BPE tokenizer (Qwen2 pre-tokenization) on the corpus.

    python3 models/demo/train_tokenizer.py --corpus .cache/corpus --out models/demo/tokenizer [--vocab 8192]

Reads only CORPUS/train.jsonl for training (one JSON object a line: {"source", "id", "text"}); reads
CORPUS/validation.jsonl only to report the tokens-per-character ratio. test.jsonl is never opened.

The tokenizer is built exactly like tests/golden/make_golden.py builds its tiny one, which is the kind of
tokenizer.json the C# QwenTokenizer loads:
    normalizer     NFC
    pre-tokenizer  Split(Qwen2 regex, isolated) then ByteLevel(add_prefix_space=False, use_regex=False)
    model          BPE, initial alphabet = the 256 ByteLevel byte symbols, min_frequency 2
    decoder        ByteLevel; post-processor ByteLevel(trim_offsets=False)
    added tokens   <|endoftext|>, <|im_start|>, <|im_end|> (special=True, normalized=False), the last 3 ids
--vocab is the total size including those 3 special tokens (BPE gets vocab - 3 ids).

Writes into --out:
    tokenizer.json            the tokenizer
    tokenizer_config.json     Qwen2-style (Qwen2Tokenizer, eos <|endoftext|>, ChatML chat_template)
    tokenizer_summary.json    vocab size, special ids, validation ratio, sha256 of tokenizer.json, versions

Deterministic: documents are fed in file order; the HF BPE trainer has no randomness for a plain BPE (no
continuing-subword prefix; the alphabet is sorted before ids are assigned). --check-determinism trains a
second time and fails if the two tokenizer.json files differ.

Needs: python3 with `tokenizers` (the GPU machine has it; no GPU is used).
"""

import argparse
import hashlib
import json
import os
import sys
import time
import unicodedata

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen2's pre-tokenization regex (the same string as in Qwen2's tokenizer.json and make_golden.py).
QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-Instruct's ChatML template (default system prompt when the first message is not a system message).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def iter_texts(path):
    """Yields the "text" of every JSON line of path, in file order (blank lines are skipped)."""
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{lineno}: not valid JSON ({e})")
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise SystemExit(f'{path}:{lineno}: no string field "text"')
            yield text


def corpus_stats(path):
    docs = chars = 0
    with_specials = 0
    for t in iter_texts(path):
        docs += 1
        chars += len(t)
        if any(s in t for s in SPECIALS):
            with_specials += 1
    return docs, chars, with_specials


def build_and_train(train_path, vocab_total, min_frequency):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, \
        pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    try:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                  use_regex=False)
    except TypeError:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)

    n_bpe = vocab_total - len(SPECIALS)
    trainer = trainers.BpeTrainer(vocab_size=n_bpe, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    n_docs = sum(1 for _ in iter_texts(train_path))
    tok.train_from_iterator(iter_texts(train_path), trainer, length=n_docs)
    got = tok.get_vocab_size(with_added_tokens=False)
    if got != n_bpe:
        raise SystemExit(f"BPE training produced {got} ids, expected {n_bpe}: the training text has too few "
                         f"distinct pairs with frequency >= {min_frequency} (lower --vocab or --min-frequency)")
    tok.add_special_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False,
                                       normalized=False, special=True) for s in SPECIALS])
    if tok.get_vocab_size(with_added_tokens=True) != vocab_total:
        raise SystemExit(f"vocabulary is {tok.get_vocab_size(True)} with special tokens, expected {vocab_total}")
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    if sorted(ids.values()) != list(range(n_bpe, vocab_total)):
        raise SystemExit(f"special tokens did not get the last ids: {ids}")
    return tok, ids


def tokenizer_config(ids, model_max_length):
    decoder = {}
    for s in SPECIALS:
        decoder[str(ids[s])] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                "single_word": False, "special": True}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def validation_ratio(tok, path, batch=1000):
    """Tokens per character of validation.jsonl (no separators counted), plus a round-trip check."""
    tokens = chars = docs = 0
    roundtrip_bad = 0
    roundtrip_checked = 0
    buf = []

    def flush():
        nonlocal tokens, roundtrip_bad, roundtrip_checked
        encs = tok.encode_batch(buf, add_special_tokens=False)
        for text, enc in zip(buf, encs):
            tokens += len(enc.ids)
            if roundtrip_checked < 500:
                roundtrip_checked += 1
                if tok.decode(enc.ids, skip_special_tokens=False) != unicodedata.normalize("NFC", text):
                    roundtrip_bad += 1
        buf.clear()

    for t in iter_texts(path):
        docs += 1
        chars += len(t)
        buf.append(t)
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    return {"documents": docs, "characters": chars, "tokens": tokens,
            "tokens_per_char": tokens / max(chars, 1), "chars_per_token": chars / max(tokens, 1),
            "roundtrip_checked": roundtrip_checked, "roundtrip_mismatches": roundtrip_bad}


def main():
    t0 = time.time()
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="folder with train.jsonl (and validation.jsonl)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--vocab", type=int, default=8192, help="total vocabulary incl. the 3 special tokens")
    ap.add_argument("--min-frequency", type=int, default=2)
    ap.add_argument("--model-max-length", type=int, default=2048, help="tokenizer_config model_max_length")
    ap.add_argument("--check-determinism", action="store_true", help="train twice and compare")
    args = ap.parse_args()

    if args.vocab < 256 + len(SPECIALS) + 1:
        raise SystemExit(f"--vocab {args.vocab} is too small (the byte alphabet alone has 256 ids)")
    train_path = os.path.join(args.corpus, "train.jsonl")
    val_path = os.path.join(args.corpus, "validation.jsonl")
    if not os.path.isfile(train_path):
        raise SystemExit(f"{train_path}: not found")
    os.makedirs(args.out, exist_ok=True)

    import tokenizers
    docs, chars, with_specials = corpus_stats(train_path)
    print(f"train.jsonl: {docs} documents, {chars} characters"
          + (f"; {with_specials} documents contain a special-token string literally" if with_specials else ""))
    if docs == 0:
        raise SystemExit(f"{train_path}: no documents")

    tok, ids = build_and_train(train_path, args.vocab, args.min_frequency)
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    digest = sha256_file(tok_path)
    print(f"trained in {time.time() - t0:.1f} s")

    det = None
    if args.check_determinism:
        tok2, _ = build_and_train(train_path, args.vocab, args.min_frequency)
        same = tok2.to_str() == tok.to_str()
        det = {"checked": True, "identical": same}
        print(f"determinism check: second training {'identical' if same else 'DIFFERS'}")
        if not same:
            raise SystemExit("the second training produced a different tokenizer.json")

    # reload from disk: what the teacher script and the C# runtime will see
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    write_json(os.path.join(args.out, "tokenizer_config.json"), tokenizer_config(ids, args.model_max_length))

    val = None
    if os.path.isfile(val_path):
        val = validation_ratio(tok, val_path)
    else:
        print(f"warning: {val_path} not found; no validation ratio")

    summary = {
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "bpe_vocab_size": tok.get_vocab_size(with_added_tokens=False),
        "special_ids": ids,
        "min_frequency": args.min_frequency,
        "train": {"documents": docs, "characters": chars, "documents_with_special_strings": with_specials},
        "validation": val,
        "tokenizer_json_sha256": digest,
        "determinism": det,
        "versions": {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__},
        "wall_s": round(time.time() - t0, 1),
    }
    write_json(os.path.join(args.out, "tokenizer_summary.json"), summary)

    print(f"vocab size: {summary['vocab_size']} ({summary['bpe_vocab_size']} BPE + {len(SPECIALS)} special)")
    print("special ids: " + ", ".join(f"{s}={i}" for s, i in ids.items()))
    if val:
        print(f"validation: {val['documents']} documents, {val['characters']} characters, {val['tokens']} tokens "
              f"-> {val['tokens_per_char']:.4f} tokens/char ({val['chars_per_token']:.3f} chars/token); "
              f"round-trip mismatches {val['roundtrip_mismatches']}/{val['roundtrip_checked']}")
    for s in ["The quick brown fox jumps over the lazy dog.", "It's 3.14159, isn't it?"]:
        enc = tok.encode(s, add_special_tokens=False)
        print(f"  {s!r} -> {len(enc.ids)} tokens {enc.tokens}")
    print(f"tokenizer.json sha256 {digest}")
    print(f"wrote {args.out}/tokenizer.json, tokenizer_config.json, tokenizer_summary.json "
          f"in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
