/* fuzz_questions.c - the questions-file reader of `ban vqa` (examples/questions.h).

   The input is a questions file (JSON, VQA's or GQA's format). vqa_questions_parse must
   refuse it with a message naming the file, or return count >= 1 questions of one format
   whose ids are valid store ids (VQA: the decimal digits of the int64 ids), whose questions
   and answers are strings of at most QUESTIONS_MAX_TEXT bytes without a NUL, and whose
   question ids are all different. cJSON, an independent parser, is the oracle: whenever it
   reads the input too (it refuses some valid files, such as one nested deeper than 1000
   levels), its tree holds exactly these questions, in this order (VQA: the "questions"
   array; GQA: every member), with the ids it reads as doubles equal to ours. The callback
   sees every question once, in order, with the count known; a callback that refuses question
   k (k from the input) stops there with its message, and nothing leaks. vqa_questions_load
   (the same reader, on a file read 7 bytes at a time) must agree: the same verdict, message
   and questions. The
   questions written back as a file of their format must read as the same list. With
   FUZZ_QUESTIONS_REPORT set in the environment, each input's verdict is printed ("refused:
   MESSAGE", or "vqa N" / "gqa N" and one JSON line a question: its keys, ids and strings),
   which tests/test_questions.py reads. Seeds: corpus/questions, written by
   make_parser_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define QUESTIONS_CHUNK 7 /* the file is read 7 bytes at a time: every token meets a chunk's end somewhere */
#define UTIL_IMPLEMENTATION /* the file is opened through util.h */
#define QUESTIONS_IMPLEMENTATION
#include "../../examples/questions.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <unistd.h>

#include "fuzz.h"

static char g_path[64];

static void remove_file(void) { unlink(g_path); }

typedef struct {
    size_t seen, stop_at;
} counter;

static int each(void *data, const vqa_questions *qs, size_t i, char *err, size_t errlen)
{
    counter *c = (counter *)data;
    FUZZ_CHECK(i == c->seen && i < qs->count, "callback for question %zu after %zu of %zu", i, c->seen, qs->count);
    FUZZ_CHECK(qs->items[i].question != NULL, "question %zu has no text", i);
    c->seen++;
    if (i == c->stop_at) return snprintf(err, errlen, "stopped at %zu", i), -1;
    return 0;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f), fputc(*p, f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int same_string(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int same(const vqa_questions *a, const vqa_questions *b)
{
    if (a->count != b->count || a->format != b->format) return 0;
    for (size_t i = 0; i < a->count; i++) {
        const vqa_question *x = &a->items[i], *y = &b->items[i];
        if (x->question_id != y->question_id || x->image_id != y->image_id ||
            !same_string(x->question_key, y->question_key) || !same_string(x->image_key, y->image_key) ||
            !same_string(x->question, y->question) || !same_string(x->answer, y->answer))
            return 0;
    }
    return 1;
}

/* the rules every accepted list satisfies */
static void check_list(const vqa_questions *a, size_t size)
{
    FUZZ_CHECK(a->count >= 1 && (a->format == QUESTIONS_VQA || a->format == QUESTIONS_GQA), "%zu questions, format %d",
               a->count, a->format);
    for (size_t i = 0; i < a->count; i++) {
        const vqa_question *q = &a->items[i];
        FUZZ_CHECK(q->question_key && store_id_check(q->question_key, strlen(q->question_key)) && q->image_key &&
                       store_id_check(q->image_key, strlen(q->image_key)),
                   "question %zu: an invalid id", i);
        FUZZ_CHECK(q->question && strlen(q->question) <= QUESTIONS_MAX_TEXT && strlen(q->question) <= size,
                   "question %zu: its text", i);
        if (a->format == QUESTIONS_VQA) {
            char qk[24], ik[24];
            snprintf(qk, sizeof qk, "%lld", (long long)q->question_id);
            snprintf(ik, sizeof ik, "%lld", (long long)q->image_id);
            FUZZ_CHECK(!strcmp(qk, q->question_key) && !strcmp(ik, q->image_key) && !q->answer,
                       "question %zu: keys %s, %s for ids %s, %s", i, q->question_key, q->image_key, qk, ik);
        } else {
            FUZZ_CHECK(q->question_id == 0 && q->image_id == 0, "a GQA question with numeric ids");
            FUZZ_CHECK(!q->answer || strlen(q->answer) <= QUESTIONS_MAX_TEXT, "question %zu: its answer", i);
        }
        for (size_t k = 0; k < i; k++) /* each question id once */
            FUZZ_CHECK(strcmp(a->items[k].question_key, q->question_key), "question %s twice", q->question_key);
    }
}

/* cJSON's reading of the same input, when it has one: the same questions */
static void check_against_cjson(const vqa_questions *a, const uint8_t *data, size_t size)
{
    /* cJSON ends a key at a \u0000, where the reader keeps it whole (then it is no field's name) */
    for (size_t i = 0; i + 6 <= size; i++)
        if (!memcmp(data + i, "\\u0000", 6)) return;
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return;
    FUZZ_CHECK(cJSON_IsObject(root), "accepted, but cJSON reads no object");
    const cJSON *list = NULL, *member; /* the "questions" array (cJSON's own lookup stops at the first "questions") */
    cJSON_ArrayForEach(member, root)
        if (member->string && !strcmp(member->string, "questions") && cJSON_IsArray(member)) list = member;
    const int vqa = list != NULL;
    FUZZ_CHECK(vqa == (a->format == QUESTIONS_VQA), "format %d, but cJSON %s a \"questions\" array", a->format,
               vqa ? "finds" : "does not find");
    const cJSON *item, *container = vqa ? list : root;
    size_t i = 0;
    cJSON_ArrayForEach(item, container)
    {
        FUZZ_CHECK(i < a->count, "cJSON reads more than %zu questions", a->count);
        const vqa_question *q = &a->items[i];
        FUZZ_CHECK(cJSON_IsObject(item), "question %zu is no object for cJSON", i);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(item, "question");
        FUZZ_CHECK(cJSON_IsString(text) && !strcmp(text->valuestring, q->question), "question %zu: its text", i);
        if (vqa) {
            const cJSON *qid = cJSON_GetObjectItemCaseSensitive(item, "question_id"),
                        *iid = cJSON_GetObjectItemCaseSensitive(item, "image_id");
            FUZZ_CHECK(cJSON_IsNumber(qid) && cJSON_IsNumber(iid) && qid->valuedouble == (double)q->question_id &&
                           iid->valuedouble == (double)q->image_id,
                       "question %zu: ids %lld, %lld; cJSON reads %.17g, %.17g", i, (long long)q->question_id,
                       (long long)q->image_id, cJSON_IsNumber(qid) ? qid->valuedouble : NAN,
                       cJSON_IsNumber(iid) ? iid->valuedouble : NAN);
        } else {
            const cJSON *iid = cJSON_GetObjectItemCaseSensitive(item, "imageId"),
                        *ans = cJSON_GetObjectItemCaseSensitive(item, "answer");
            FUZZ_CHECK(item->string && !strcmp(item->string, q->question_key), "question %zu: its id", i);
            FUZZ_CHECK(cJSON_IsString(iid) && !strcmp(iid->valuestring, q->image_key), "question %zu: image id", i);
            FUZZ_CHECK(cJSON_IsString(ans) ? q->answer && !strcmp(ans->valuestring, q->answer) : !q->answer,
                       "question %zu: answer", i);
        }
        i++;
    }
    FUZZ_CHECK(i == a->count, "cJSON reads %zu questions, the reader %zu", i, a->count);
    cJSON_Delete(root);
}

/* the list as a file of its own format */
static void write_back(const vqa_questions *a, const char *path)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    if (a->format == QUESTIONS_VQA) {
        fputs("{\"info\": {}, \"questions\": [", f);
        for (size_t i = 0; i < a->count; i++) {
            fprintf(f, "%s{\"image_id\": %lld, \"question\": ", i ? ",\n" : "\n", (long long)a->items[i].image_id);
            json_string(f, a->items[i].question);
            fprintf(f, ", \"question_id\": %lld}", (long long)a->items[i].question_id);
        }
        fputs("]}\n", f);
    } else {
        fputc('{', f);
        for (size_t i = 0; i < a->count; i++) {
            const vqa_question *q = &a->items[i];
            fputs(i ? ",\n" : "\n", f);
            json_string(f, q->question_key);
            fputs(": {\"semantic\": [{\"op\": \"select\"}], \"imageId\": ", f);
            json_string(f, q->image_key);
            fputs(", \"question\": ", f);
            json_string(f, q->question);
            if (q->answer) fputs(", \"answer\": ", f), json_string(f, q->answer);
            fputs(", \"types\": {\"structural\": \"query\"}}", f);
        }
        fputs("}\n", f);
    }
    FUZZ_CHECK(fclose(f) == 0, "cannot write %s", path);
}

static void report(const vqa_questions *a, int rc, const char *err)
{
    if (rc) {
        printf("refused: %s\n", err);
        return;
    }
    printf("%s %zu\n", a->format == QUESTIONS_VQA ? "vqa" : "gqa", a->count);
    for (size_t i = 0; i < a->count; i++) {
        const vqa_question *q = &a->items[i];
        printf("{\"question_id\": %lld, \"image_id\": %lld, \"question_key\": ", (long long)q->question_id,
               (long long)q->image_id);
        json_string(stdout, q->question_key);
        fputs(", \"image_key\": ", stdout);
        json_string(stdout, q->image_key);
        fputs(", \"question\": ", stdout);
        json_string(stdout, q->question);
        fputs(", \"answer\": ", stdout);
        if (q->answer) json_string(stdout, q->answer);
        else fputs("null", stdout);
        fputs("}\n", stdout);
    }
    fflush(stdout);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_questions.%ld.json", (long)getpid());
        atexit(remove_file);
    }
    vqa_questions a, b, c;
    char err_a[512] = "", err_b[512] = "";
    counter ca = {0, (size_t)-1};
    int rc = vqa_questions_parse(data, size, "q.json", &a, each, &ca, err_a, sizeof err_a);
    if (getenv("FUZZ_QUESTIONS_REPORT")) report(&a, rc, err_a);
    if (rc == 0) {
        FUZZ_CHECK(ca.seen == a.count, "%zu questions, %zu seen", a.count, ca.seen);
        check_list(&a, size);
        check_against_cjson(&a, data, size);
        /* a callback that refuses question k stops there, with its message */
        const size_t k = size ? data[size - 1] % a.count : 0;
        counter cc = {0, k};
        char err_c[512] = "";
        FUZZ_CHECK(vqa_questions_parse(data, size, "q.json", &c, each, &cc, err_c, sizeof err_c) == -1 &&
                       cc.seen == k + 1 && !c.items && !c.text,
                   "stopping at question %zu: %zu seen", k, cc.seen);
        char want[64];
        snprintf(want, sizeof want, "stopped at %zu", k);
        FUZZ_CHECK(!strcmp(err_c, want), "message '%s'", err_c);
        /* written back, the same questions */
        write_back(&a, g_path);
        FUZZ_CHECK(vqa_questions_load(g_path, &b, NULL, NULL, err_b, sizeof err_b) == 0, "written back: %s", err_b);
        FUZZ_CHECK(same(&a, &b), "written back, the questions read differently");
        vqa_questions_free(&b);
    } else {
        FUZZ_CHECK(!a.items && !a.text && a.count == 0, "refused, but questions are handed out");
        FUZZ_CHECK(!strncmp(err_a, "q.json: ", 8), "message: %s", err_a);
    }
    /* the file reader: the same verdict, message (the path in place of the name) and questions */
    FILE *f = fopen(g_path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", g_path);
    counter cb = {0, (size_t)-1};
    int rc_b = vqa_questions_load(g_path, &b, each, &cb, err_b, sizeof err_b);
    FUZZ_CHECK(rc_b == rc, "parse says %d (%s), load %d (%s)", rc, err_a, rc_b, err_b);
    if (rc == 0) {
        FUZZ_CHECK(same(&a, &b), "parse and load read different questions");
    } else {
        const size_t lp = strlen(g_path);
        FUZZ_CHECK(!strncmp(err_b, g_path, lp) && !strcmp(err_b + lp, err_a + 6), "messages differ: '%s' and '%s'",
                   err_a, err_b);
    }
    vqa_questions_free(&a);
    vqa_questions_free(&b);
    return 0;
}
