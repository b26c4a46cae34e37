#include <string.h>
#include "shim.h"
#include "_cgo_export.h"

static void strata_log_cb(enum ggml_log_level level, const char *text, void *user_data) {
	(void)user_data;
	goLog((int)level, (char *)text);
}

void strata_log_install(void) {
	llama_log_set(strata_log_cb, NULL);
}

#ifndef _WIN32
#include <dlfcn.h>

// A backend loaded from a shared library (GGML_BACKEND_DL) links its own
// libggml-base, whose logger is not the one llama_log_set reaches: without
// this its messages, debug ones too, go to stderr unfiltered. path names
// that libggml-base, which is loaded here before the backend (and stays
// loaded: the backend then links against this one), so that the backend's
// first messages are routed too.
int strata_log_install_lib(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return 0;
	void (*set)(ggml_log_callback, void *) = (void (*)(ggml_log_callback, void *))dlsym(h, "ggml_log_set");
	if (set == NULL) return 0;
	set(strata_log_cb, NULL);
	return 1;
}
#else
int strata_log_install_lib(const char *path) {
	(void)path;
	return 0;
}
#endif

static bool strata_progress_cb(float progress, void *user_data) {
	return goProgress(progress, (uintptr_t)user_data);
}

void strata_set_progress(struct llama_model_params *p, uintptr_t handle) {
	p->progress_callback = strata_progress_cb;
	p->progress_callback_user_data = (void *)handle;
}

strata_observer *strata_observer_new(uintptr_t handle, int n_prefixes, int all, volatile int32_t *abort_flag) {
	strata_observer *o = calloc(1, sizeof *o);
	if (o == NULL) return NULL;
	o->handle = handle;
	o->all = all;
	o->abort_flag = abort_flag;
	o->n_prefixes = n_prefixes;
	if (n_prefixes > 0) {
		o->prefixes = calloc((size_t)n_prefixes, sizeof(char *));
		o->prefix_lens = calloc((size_t)n_prefixes, sizeof(size_t));
		if (o->prefixes == NULL || o->prefix_lens == NULL) {
			strata_observer_free(o);
			return NULL;
		}
	}
	return o;
}

void strata_observer_set_prefix(strata_observer *o, int i, const char *prefix) {
	o->prefixes[i] = strdup(prefix);
	o->prefix_lens[i] = strlen(prefix);
}

void strata_observer_free(strata_observer *o) {
	if (o == NULL) return;
	for (int i = 0; i < o->n_prefixes; i++) free(o->prefixes ? o->prefixes[i] : NULL);
	free(o->prefixes);
	free(o->prefix_lens);
	free(o);
}

static bool strata_observer_match(const strata_observer *o, const char *name) {
	if (o->all) return true;
	for (int i = 0; i < o->n_prefixes; i++) {
		if (o->prefixes[i] != NULL && strncmp(name, o->prefixes[i], o->prefix_lens[i]) == 0) return true;
	}
	return false;
}

static bool strata_eval_cb(struct ggml_tensor *t, bool ask, void *user_data) {
	const strata_observer *o = user_data;
	if (ask) return strata_observer_match(o, t->name);
	if (!strata_observer_match(o, t->name)) return true;
	// Returning false to ggml would only cut the current graph split short
	// and let the decode "succeed" with partial results. Raise the abort
	// flag instead: ggml polls it before the next node and the decode
	// fails with llama_decode's code 2.
	if (!goObserve(o->handle, t) && o->abort_flag != NULL) *o->abort_flag = 1;
	return true;
}

void strata_set_observer(struct llama_context_params *p, strata_observer *o) {
	p->cb_eval = strata_eval_cb;
	p->cb_eval_user_data = o;
}

static bool strata_abort_cb(void *data) {
	return *(volatile int32_t *)data != 0;
}

void strata_set_abort(struct llama_context *ctx, volatile int32_t *flag) {
	llama_set_abort_callback(ctx, strata_abort_cb, (void *)flag);
}

int strata_tensor_is_host(const struct ggml_tensor *t) {
	return t->buffer == NULL || ggml_backend_buffer_is_host(t->buffer);
}

void strata_tensor_get(const struct ggml_tensor *t, void *dst, size_t n) {
	ggml_backend_tensor_get(t, dst, 0, n);
}

void strata_to_float(ggml_to_float_t fn, const void *src, float *dst, int64_t n) {
	fn(src, dst, n);
}

int32_t strata_sample(struct llama_sampler *s, struct llama_context *ctx, int32_t idx) {
	if (llama_get_logits_ith(ctx, idx) == NULL) return -1;
	return llama_sampler_sample(s, ctx, idx);
}

static int32_t strata_n_vocab(struct llama_context *ctx) {
	return llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
}

int32_t strata_sample_greedy(struct llama_sampler *s, struct llama_context *ctx, int32_t idx) {
	const float *logits = llama_get_logits_ith(ctx, idx);
	if (logits == NULL) return -1;
	const int32_t n = strata_n_vocab(ctx);
	// Eight running maxima break the compare-and-move chain of one; the
	// first index of the largest is then found in one more pass.
	float m[8];
	int32_t i = 0;
	for (int j = 0; j < 8; j++) m[j] = logits[0];
	for (; i + 8 <= n; i += 8) {
		for (int j = 0; j < 8; j++) m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];
	}
	float best = m[0];
	for (int j = 1; j < 8; j++) best = m[j] > best ? m[j] : best;
	for (; i < n; i++) best = logits[i] > best ? logits[i] : best;
	int32_t tok = 0;
	while (tok < n && !(logits[tok] == best)) tok++;
	if (tok == n) tok = 0; // NaN everywhere: llama.cpp's greedy picks the first too
	llama_sampler_accept(s, tok);
	return tok;
}

// A min-heap on logit holds the k largest seen so far.
static void strata_heap_down(llama_token_data *h, int32_t n, int32_t i) {
	for (;;) {
		int32_t l = 2 * i + 1, r = l + 1, s = i;
		if (l < n && h[l].logit < h[s].logit) s = l;
		if (r < n && h[r].logit < h[s].logit) s = r;
		if (s == i) return;
		llama_token_data t = h[i];
		h[i] = h[s];
		h[s] = t;
		i = s;
	}
}

static int strata_by_logit_desc(const void *a, const void *b) {
	const llama_token_data *x = a, *y = b;
	if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int32_t strata_sample_top_k(struct llama_sampler *rest, struct llama_context *ctx, int32_t idx, int32_t k, llama_token_data *buf) {
	const float *logits = llama_get_logits_ith(ctx, idx);
	if (logits == NULL) return -1;
	const int32_t n = strata_n_vocab(ctx);
	if (k > n) k = n;
	int32_t i = 0;
	for (; i < k; i++) buf[i] = (llama_token_data){i, logits[i], 0.0f};
	for (int32_t j = k / 2 - 1; j >= 0; j--) strata_heap_down(buf, k, j);
	// Blocks of 16 are compared with the heap's least at once (the
	// compiler vectorizes that); few blocks hold a new candidate.
	for (; i + 16 <= n; i += 16) {
		const float least = buf[0].logit;
		int any = 0;
		for (int j = 0; j < 16; j++) any |= logits[i + j] > least;
		if (!any) continue;
		for (int32_t j = i; j < i + 16; j++) {
			if (logits[j] > buf[0].logit) {
				buf[0] = (llama_token_data){j, logits[j], 0.0f};
				strata_heap_down(buf, k, 0);
			}
		}
	}
	for (; i < n; i++) {
		if (logits[i] > buf[0].logit) {
			buf[0] = (llama_token_data){i, logits[i], 0.0f};
			strata_heap_down(buf, k, 0);
		}
	}
	qsort(buf, (size_t)k, sizeof *buf, strata_by_logit_desc);
	llama_token_data_array cur = {buf, (size_t)k, -1, true};
	llama_sampler_apply(rest, &cur);
	if (cur.selected < 0 || cur.selected >= (int64_t)cur.size) return -2;
	const llama_token tok = cur.data[cur.selected].id;
	llama_sampler_accept(rest, tok);
	return tok;
}
