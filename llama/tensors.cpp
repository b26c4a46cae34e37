// tensors.cpp lists a loaded model's weight tensors with where llama.cpp
// placed them. llama.h has no such call; llama-model.h's
// llama_internal_get_tensor_map (what llama.cpp's own tools use) does.

extern "C" {
#include "shim.h"
}
#include "llama-model.h"

extern "C" int32_t strata_model_n_tensors(const struct llama_model *m) {
	return (int32_t) llama_internal_get_tensor_map(m).size();
}

extern "C" const char *strata_model_tensor(const struct llama_model *m, int32_t i, strata_tensor_place *out) {
	const auto &tensors = llama_internal_get_tensor_map(m);
	if (i < 0 || (size_t) i >= tensors.size()) {
		return NULL;
	}
	const struct ggml_tensor *t = tensors[i].second;
	out->data = (uintptr_t) t->data;
	out->nbytes = ggml_nbytes(t);
	out->host = 0;
	out->buffer = "";
	if (t->buffer != NULL) {
		out->host = ggml_backend_buffer_is_host(t->buffer);
		out->buffer = ggml_backend_buft_name(ggml_backend_buffer_get_type(t->buffer));
	}
	return tensors[i].first.c_str();
}
