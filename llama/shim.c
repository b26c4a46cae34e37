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
