// shim.h declares Strata's small C helpers around llama.h. They exist so
// that hot paths (eval-callback filtering, abort checks) stay in C and Go
// never converts integers to pointers.
#ifndef STRATA_LLAMA_SHIM_H
#define STRATA_LLAMA_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include "llama.h"
#include "ggml.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

void strata_log_install(void);
int strata_log_install_lib(const char *path);
void strata_set_progress(struct llama_model_params *p, uintptr_t handle);

// strata_observer is the C side of an eval callback: the ask pass is
// answered here from the name prefixes, so unobserved tensors never cross
// into Go.
typedef struct strata_observer {
	uintptr_t handle;
	int n_prefixes;
	char **prefixes;
	size_t *prefix_lens;
	int all; // observe every tensor
	volatile int32_t *abort_flag; // set when the Go side asks to stop
} strata_observer;

strata_observer *strata_observer_new(uintptr_t handle, int n_prefixes, int all, volatile int32_t *abort_flag);
void strata_observer_set_prefix(strata_observer *o, int i, const char *prefix);
void strata_observer_free(strata_observer *o);
void strata_set_observer(struct llama_context_params *p, strata_observer *o);

// strata_abort is polled by ggml between graph nodes; a non-zero flag stops
// the running decode.
void strata_set_abort(struct llama_context *ctx, volatile int32_t *flag);

// strata_sample samples at batch position idx, or returns -1 when the last
// decode left no logits there (llama_sampler_sample would read through a
// NULL pointer): one cgo call per token for both.
int32_t strata_sample(struct llama_sampler *s, struct llama_context *ctx, int32_t idx);

// strata_sample_greedy returns the first most likely token at idx, read
// straight from the logits (llama_sampler_sample first copies all of them
// into an array of candidates), and records it in s; -1 as strata_sample.
int32_t strata_sample_greedy(struct llama_sampler *s, struct llama_context *ctx, int32_t idx);

// strata_sample_top_k picks the k most likely tokens at idx in one pass
// over the logits, sorted as llama.cpp's top-k leaves them, into buf (k
// entries), and lets rest, the stages after top-k, choose among them; -1
// as strata_sample, -2 if rest chose nothing.
int32_t strata_sample_top_k(struct llama_sampler *rest, struct llama_context *ctx, int32_t idx, int32_t k, llama_token_data *buf);

// strata_to_float calls a ggml_to_float_t (cgo cannot call C function
// pointers itself).
void strata_to_float(ggml_to_float_t fn, const void *src, float *dst, int64_t n);

int strata_tensor_is_host(const struct ggml_tensor *t);

// strata_tensor_place is where llama.cpp put one weight tensor.
typedef struct strata_tensor_place {
	uintptr_t data;     // the tensor's bytes (in the buffer's memory)
	size_t nbytes;
	int host;           // the buffer is in host memory
	const char *buffer; // the buffer type's name: CPU_Mapped, CPU_REPACK, CUDA0, ...
} strata_tensor_place;

// strata_model_n_tensors and strata_model_tensor list the weight tensors
// of a loaded model (tensors.cpp): strata_model_tensor fills out for
// tensor i and returns its name, or NULL past the end.
int32_t strata_model_n_tensors(const struct llama_model *m);
const char *strata_model_tensor(const struct llama_model *m, int32_t i, strata_tensor_place *out);
void strata_tensor_get(const struct ggml_tensor *t, void *dst, size_t n);

// strata_call is the result of a guarded llama.cpp call (guard.cpp): n
// what the call returned, or, when it threw a C++ exception (which would
// otherwise abort the process at the C boundary), exc: 1 for
// std::out_of_range, 2 for another std::exception, 3 for anything else.
typedef struct strata_call {
	int32_t n;
	int32_t exc;
} strata_call;

strata_call strata_tokenize(const struct llama_vocab *v, const char *text, int32_t len, llama_token *tokens, int32_t n_max, bool add_special, bool parse_special);
strata_call strata_token_to_piece(const struct llama_vocab *v, llama_token t, char *buf, int32_t len, int32_t lstrip, bool special);
strata_call strata_detokenize(const struct llama_vocab *v, const llama_token *tokens, int32_t n, char *text, int32_t len, bool remove_special, bool unparse_special);

#endif
