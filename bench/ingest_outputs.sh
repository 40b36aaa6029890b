#!/bin/sh
# ingest_outputs.sh — import every corpus in ../shared/data with one phishlens
# binary into OUTDIR (one JSONL per corpus, and the printed summaries in
# OUTDIR/summary.txt). Run it with the binaries before and after a change and
# compare the directories (`cmp`) to check that the change keeps the output
# byte for byte.
#
# usage: sh bench/ingest_outputs.sh BIN OUTDIR [SHARED_DIR]
set -e
B=$1
O=$2
D=${3:-../shared}/data
[ -n "$B" ] && [ -n "$O" ] || { echo "usage: $0 BIN OUTDIR [SHARED_DIR]" >&2; exit 2; }
mkdir -p "$O"
: > "$O/summary.txt"
run() {
    name=$1
    shift
    echo "== $name" >> "$O/summary.txt"
    "$B" data import "$@" -o "$O/$name.jsonl" 2>&1 | sed "s|$O/||" >> "$O/summary.txt"
}
run nazario --source nazario "$D/nazario_curated_csv/Nazario.csv"
run nazario_mbox --source nazario_mbox "$D/nazario_mbox/phishing0.mbox"
run spamassassin --source spamassassin "$D/spamassassin_raw"
for i in 1 2 3 4 5 6; do run enron$i --source enron$i "$D/enron_spam_csv/enron$i.csv"; done
run lingspam --source lingspam "$D/lingspam_csv/lingspam_bare.csv"
run spamscope --source spamscope "$D/mime_fixtures/spamscope_mail_parser"
run zbateson --source zbateson "$D/mime_fixtures/zbateson_mail_mime_parser"
