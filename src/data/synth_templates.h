/* synth_templates.h — private to synth.c: the styles of the synthetic corpus.
 *
 * A template is text with {slot} references (filled from the per-email
 * context, see synth.c) and [a|b|c] alternatives (one chosen at random; not
 * nested). Lists are NULL-terminated. Subjects, greetings, context sentences,
 * closings and signatures are shared by both labels; only the cue sentence
 * (cue_phish vs cue_legit) carries the label.
 */
#ifndef PL_SYNTH_TEMPLATES_H
#define PL_SYNTH_TEMPLATES_H

typedef struct {
    const char *name;          /* the source name */
    const char *description;
    const char *brand_slot;    /* which list names the sending organization */
    const char *const *subject;
    const char *const *greeting;
    const char *const *context; /* 2-4 of these per email, shuffled */
    const char *const *cue_phish;
    const char *const *cue_legit;
    const char *const *closing;
    const char *const *signature;
} synth_style;

extern const synth_style synth_styles[];
extern const int synth_n_styles;

/* Word lists for slots (NULL-terminated). */
typedef struct {
    const char *name;
    const char *const *words;
} synth_list;
extern const synth_list synth_lists[];

#endif
