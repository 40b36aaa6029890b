#!/usr/bin/env python3
"""ingest_py.py — the Python baseline for bench/ingest.c.

Does the same job as `phishlens data import` on every corpus in
SHARED/data, with the Python standard library only: csv (RFC 4180 rows),
mailbox + email (policy.default: MIME tree, transfer encodings, charsets,
RFC 2047), html.parser (HTML -> text, hrefs), re (URLs), json (one record per
line). Prints one machine-readable line:
    py_ingest records=N bytes=N seconds=S cpu=S
usage: python3 bench/ingest_py.py SHARED_DIR OUT.jsonl
"""
import csv
import email
import email.policy
import html.parser
import json
import mailbox
import os
import re
import sys
import time

URL_RE = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"'`{}|\\^]+", re.I)
BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "hr",
         "ul", "ol", "pre", "form", "center", "title", "body"}
SKIP = {"script", "style", "head", "noscript", "template"}


class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.hrefs, self.skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCK:
            self.out.append("\n")
        if tag == "a":
            for k, v in attrs:
                if k == "href" and v:
                    self.hrefs.append(v.strip())

    def handle_endtag(self, tag):
        if tag in SKIP and self.skip:
            self.skip -= 1
        elif tag in BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_text(s):
    p = Text()
    try:
        p.feed(s)
        p.close()
    except Exception:
        pass
    lines = (" ".join(l.split()) for l in "".join(p.out).split("\n"))
    return "\n".join(l for l in lines if l), p.hrefs


def looks_html(s):
    h = s[:65536].lower()
    return "<html" in h or "<body" in h


def add_urls(urls, text):
    for u in URL_RE.findall(text):
        u = u.rstrip(".,;:!?*')")
        if u not in urls:
            urls.append(u)


def text_record(rid, src, label, subject, frm, to, date, body):
    urls = []
    if looks_html(body):
        body, hrefs = html_text(body)
        for h in hrefs:
            if h.lower().startswith(("http://", "https://", "ftp://", "www.")) and h not in urls:
                urls.append(h)
    add_urls(urls, body)
    return {"id": rid, "source": src, "label": label, "subject": subject, "from": frm, "to": to,
            "date": date, "body": body, "urls": urls, "meta": {}}


def msg_record(rid, src, label, msg):
    parts, urls, atts = [], [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text":
            atts.append({"name": part.get_filename() or "", "type": ctype,
                         "size": len(part.get_payload(decode=True) or b"")})
            continue
        try:
            text = part.get_content()
        except Exception:
            text = (part.get_payload(decode=True) or b"").decode("latin-1")
        if ctype == "text/html":
            text, hrefs = html_text(text)
            for h in hrefs:
                if h.lower().startswith(("http://", "https://", "ftp://", "www.")) and h not in urls:
                    urls.append(h)
        add_urls(urls, text)
        parts.append(text)

    def hdr(k):
        try:
            v = msg[k]
            return " ".join(str(v).split()) if v is not None else ""
        except Exception:
            return ""
    return {"id": rid, "source": src, "label": label, "subject": hdr("subject"), "from": hdr("from"),
            "to": hdr("to"), "date": hdr("date"), "body": "\n\n".join(parts), "urls": urls,
            "meta": {"attachments": atts}}


def main():
    shared, out_path = sys.argv[1], sys.argv[2]
    data = os.path.join(shared, "data")
    csv.field_size_limit(1 << 30)
    n = nbytes = 0
    t0, c0 = time.time(), time.process_time()
    with open(out_path, "w", encoding="utf-8") as out:
        def put(rec):
            nonlocal n
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        csvs = [("nazario", "nazario_curated_csv/Nazario.csv"), ("lingspam", "lingspam_csv/lingspam_bare.csv")]
        csvs += [("enron", "enron_spam_csv/enron%d.csv" % i) for i in range(1, 7)]
        for src, rel in csvs:
            p = os.path.join(data, rel)
            nbytes += os.path.getsize(p)
            with open(p, newline="", encoding="utf-8", errors="replace") as f:
                for i, row in enumerate(csv.DictReader(f)):
                    lab = row.get("label", "")
                    put(text_record("%s:%s:%d" % (src, os.path.basename(p), i + 1), src,
                                    1 if lab.strip() == "1" else 0, row.get("subject", ""), row.get("sender", ""),
                                    row.get("receiver", ""), row.get("date", ""), row.get("body", "")))
        p = os.path.join(data, "nazario_mbox/phishing0.mbox")
        nbytes += os.path.getsize(p)
        box = mailbox.mbox(p, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
        for i, m in enumerate(box):
            put(msg_record("nazario_mbox:phishing0.mbox:%d" % (i + 1), "nazario_mbox", 1, m))
        for src, rel in [("spamassassin", "spamassassin_raw"), ("spamscope", "mime_fixtures/spamscope_mail_parser"),
                         ("zbateson", "mime_fixtures/zbateson_mail_mime_parser")]:
            root = os.path.join(data, rel)
            for d, dirs, files in os.walk(root):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith((".csv", ".md")):
                        continue
                    p = os.path.join(d, name)
                    with open(p, "rb") as f:
                        raw = f.read()
                    nbytes += len(raw)
                    if not raw or raw[:4] == b"\xd0\xcf\x11\xe0":
                        continue
                    relp = os.path.relpath(p, root)
                    label = 1 if "spam" in relp.split("/")[0] else 0 if "ham" in relp else -1
                    put(msg_record("%s:%s" % (src, relp), src, label,
                                   email.message_from_bytes(raw, policy=email.policy.default)))
    dt, dc = time.time() - t0, time.process_time() - c0
    print("py_ingest records=%d bytes=%d seconds=%.3f cpu=%.3f" % (n, nbytes, dt, dc))


if __name__ == "__main__":
    main()
