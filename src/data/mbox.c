/* mbox.c — splitting mbox files into messages.
 *
 * Follows the mbox family as described in RFC 4155 and the classic
 * mboxo / mboxrd conventions: a message starts at a "From " line at the
 * start of the file or after an empty line (the blank-line rule avoids
 * splitting at unescaped "From " lines inside bodies). The envelope line
 * itself is not part of the message. Unescaping: mboxrd turns ">From ",
 * ">>From ", ... into one '>' fewer; mboxo only turns ">From " into "From ".
 * Content-Length headers (mboxcl) are not used. The blank line that separates
 * a message from the next "From " line is removed. */
#include "data.h"

#include <string.h>

void pl_mbox_init(pl_mbox *m, const char *data, size_t len, int rd) {
    memset(m, 0, sizeof *m);
    m->data = data;
    m->len = len;
    m->rd = rd;
    m->line = 1;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) m->pos = 3;
}

void pl_mbox_free(pl_mbox *m) {
    pl_buf_free(&m->msg);
    memset(m, 0, sizeof *m);
}

int pl_is_mbox(const char *data, size_t len) {
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) data += 3, len -= 3;
    return len >= 5 && !memcmp(data, "From ", 5);
}

/* Is the line at d[p..] (p at a line start) a separator, given whether the
 * previous line was empty? */
static int is_sep(const char *d, size_t n, size_t p, int prev_blank) {
    return prev_blank && n - p >= 5 && !memcmp(d + p, "From ", 5);
}

int pl_mbox_next(pl_mbox *m) {
    const char *d = m->data;
    size_t n = m->len, p = m->pos;
    m->msg.len = 0;
    /* find the next separator (skipping any junk before the first one) */
    int prev_blank = 1;
    while (p < n && !is_sep(d, n, p, prev_blank)) {
        const char *nl = memchr(d + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - d) : n;
        prev_blank = e == p || (e == p + 1 && d[p] == '\r');
        p = nl ? e + 1 : n;
        m->line++;
    }
    if (p >= n) {
        m->pos = n;
        return 0;
    }
    m->msg_offset = p;
    m->msg_line = m->line;
    /* skip the envelope line */
    const char *nl = memchr(d + p, '\n', n - p);
    p = nl ? (size_t)(nl - d) + 1 : n;
    m->line++;
    prev_blank = 0;
    size_t pending_blank = 0; /* length of a held-back empty line (1 or 2 bytes) */
    while (p < n) {
        if (is_sep(d, n, p, prev_blank)) break;
        nl = memchr(d + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - d) + 1 : n;
        size_t ll = e - p;
        int blank = (ll == 1 && d[p] == '\n') || (ll == 2 && d[p] == '\r' && d[p + 1] == '\n');
        /* a held-back blank line is emitted once we know it is not the separator's */
        if (pending_blank) {
            if (pl_buf_append(&m->msg, pending_blank == 1 ? "\n" : "\r\n", pending_blank)) return -1;
            pending_blank = 0;
        }
        if (blank) {
            pending_blank = ll;
        } else {
            size_t skip = 0;
            if (d[p] == '>') {
                size_t k = p;
                while (k < e && d[k] == '>') k++;
                if (e - k >= 5 && !memcmp(d + k, "From ", 5) && (m->rd || k == p + 1)) skip = 1;
            }
            if (pl_buf_append(&m->msg, d + p + skip, ll - skip)) return -1;
        }
        prev_blank = blank;
        p = e;
        m->line++;
    }
    /* at end of file a trailing blank line belongs to the message body */
    if (pending_blank && p >= n && pl_buf_append(&m->msg, pending_blank == 1 ? "\n" : "\r\n", pending_blank))
        return -1;
    if (pl_buf_append(&m->msg, "", 0) || pl_buf_reserve(&m->msg, 1)) return -1;
    m->msg.data[m->msg.len] = 0;
    m->pos = p;
    return 1;
}
