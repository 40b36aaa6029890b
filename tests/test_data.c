/* test_data.c — the data module: records and JSONL round trips. */
#include "harness.h"

#include <cJSON.h>
#include <unistd.h>

#include "data/data.h"

static void test_record_roundtrip(void) {
    pl_record r;
    pl_record_init(&r);
    CHECK(r.label == -1 && r.body && r.body[0] == 0, "init gives empty fields, label -1");
    CHECK_OK(pl_record_set(&r.id, "a1"));
    CHECK_OK(pl_record_set(&r.source, "synth"));
    CHECK_OK(pl_record_set(&r.body, "line1\nline2 \"quoted\" \xc3\xa9"));
    CHECK_OK(pl_record_add_url(&r, "http://x.example/a"));
    r.label = 1;
    pl_buf b = {0};
    CHECK_OK(pl_record_to_json(&r, &b));
    CHECK(strchr(b.data, '\n') == NULL, "one line: %s", b.data);
    pl_record q;
    CHECK_OK(pl_record_from_json(b.data, b.len, "mem", 1, &q));
    CHECK(strcmp(q.body, r.body) == 0 && q.label == 1 && q.n_urls == 1 && strcmp(q.urls[0], r.urls[0]) == 0,
          "round trip keeps body, label and urls");
    pl_record_free(&q);
    pl_buf_free(&b);
    pl_record_free(&r);

    CHECK(pl_record_from_json("{\"label\":2}", 11, "f.jsonl", 7, &q) == PL_ERR_FORMAT, "label 2 rejected");
    CHECK(strstr(pl_errmsg(), "f.jsonl:7") != NULL, "error names file:line: %s", pl_errmsg());
    CHECK(pl_record_from_json("[1,2]", 5, "f.jsonl", 3, &q) == PL_ERR_FORMAT, "array rejected");
    CHECK(pl_record_from_json("{\"body\":5}", 10, "f.jsonl", 3, &q) == PL_ERR_FORMAT, "non-string body rejected");
    CHECK_OK(pl_record_from_json("{\"text\":\"hi\",\"label\":0}", 23, "f", 1, &q));
    CHECK(strcmp(q.body, "hi") == 0 && q.label == 0, "text is a synonym for body");
    pl_record_free(&q);
}

static void test_jsonl_file(void) {
    char path[] = "/tmp/pl_test_data_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    pl_records rs = {0};
    for (int i = 0; i < 100; i++) {
        pl_record r;
        pl_record_init(&r);
        char id[32];
        snprintf(id, sizeof id, "r%d", i);
        pl_record_set(&r.id, id);
        r.label = i % 2;
        r.meta = cJSON_CreateObject();
        cJSON_AddNumberToObject(r.meta, "i", i);
        pl_records_push(&rs, &r);
    }
    CHECK_OK(pl_records_write_jsonl(path, &rs));
    pl_records back = {0};
    CHECK_OK(pl_records_read_jsonl(path, &back));
    CHECK(back.n == 100, "read %zu records", back.n);
    int same = back.n == 100;
    for (size_t i = 0; same && i < back.n; i++)
        same = strcmp(back.v[i].id, rs.v[i].id) == 0 && back.v[i].label == rs.v[i].label &&
               cJSON_GetObjectItem(back.v[i].meta, "i")->valueint == (int)i;
    CHECK(same, "records survive the file round trip");
    pl_records_free(&back);
    pl_records_free(&rs);
    FILE *fp = fopen(path, "w");
    fputs("{\"id\":\"a\"}\n\n{\"id\":\n", fp);
    fclose(fp);
    CHECK(pl_records_read_jsonl(path, &back) == PL_ERR_FORMAT, "truncated JSON rejected");
    CHECK(strstr(pl_errmsg(), ":3:") != NULL, "error names line 3: %s", pl_errmsg());
    pl_records_free(&back);
    unlink(path);
}

int main(void) {
    T_BEGIN();
    test_record_roundtrip();
    test_jsonl_file();
    return T_END();
}
