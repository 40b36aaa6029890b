#!/usr/bin/env python3
"""ingest_subjects.py — reference decoded Subject headers for test_ingest.

Decodes the Subject of every message in the Nazario mbox, the SpamAssassin
spam/ and spam_2/ folders and the two MIME fixture folders with Python's
standard `email` package (policy.default: RFC 2047 decoding, charsets), and
writes "<record id>\t<subject>" lines (whitespace runs collapsed) to
tests/data/ingest_ref_subjects.tsv. Record ids follow docs/records.md.

usage: python3 tools/ref/ingest_subjects.py [SHARED_DIR]   (default ../shared)
"""
import email
import email.policy
import mailbox
import os
import re
import sys

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
data = os.path.join(shared, "data")
out = []


def subject_of(msg):
    try:
        s = msg["subject"]
    except Exception:  # malformed header: Python raises, we leave it out
        return None
    if s is None:
        return ""
    return re.sub(r"[ \t\r\n]+", " ", str(s)).strip()


def add(rid, msg):
    s = subject_of(msg)
    # skip subjects with raw 8-bit bytes in no declared charset: Python turns
    # them into U+FFFD (or surrogates), phishlens guesses windows-1252; neither
    # is a reference
    if s is None or "\ufffd" in s or any(0xD800 <= ord(ch) <= 0xDFFF for ch in s):
        return
    out.append((rid, s))


box = mailbox.mbox(os.path.join(data, "nazario_mbox/phishing0.mbox"),
                   factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
for i, m in enumerate(box):
    add("nazario_mbox:phishing0.mbox:%d" % (i + 1), m)

for src, rel in [("spam", "spamassassin_raw/spam"), ("spam_2", "spamassassin_raw/spam_2"),
                 ("spamscope", "mime_fixtures/spamscope_mail_parser"),
                 ("zbateson", "mime_fixtures/zbateson_mail_mime_parser")]:
    d = os.path.join(data, rel)
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if name.endswith((".csv", ".md")) or name == "mail_outlook_1" or os.path.getsize(p) == 0:
            continue
        with open(p, "rb") as f:
            add("%s:%s" % (src, name), email.message_from_binary_file(f, policy=email.policy.default))

with open("tests/data/ingest_ref_subjects.tsv", "w", encoding="utf-8") as f:
    for rid, s in out:
        f.write("%s\t%s\n" % (rid, s.replace("\t", " ")))
print("wrote %d subjects" % len(out))
