// guard.cpp calls the llama.cpp functions that can throw on a corrupt
// model inside try/catch. llama.h declares them extern "C", but they are
// C++ and some throw: the tokenizer looks byte tokens up with
// unordered_map::at, so a vocabulary that lacks one throws
// std::out_of_range on the first text that needs it. An exception that
// reaches the C boundary calls std::terminate and kills the process; here
// it becomes a code the Go side turns into an error.

extern "C" {
#include "shim.h"
}
#include <exception>
#include <stdexcept>

template <typename F> static strata_call guarded(F f) {
	try {
		return strata_call{f(), 0};
	} catch (const std::out_of_range &) {
		return strata_call{0, 1};
	} catch (const std::exception &) {
		return strata_call{0, 2};
	} catch (...) {
		return strata_call{0, 3};
	}
}

extern "C" strata_call strata_tokenize(const struct llama_vocab *v, const char *text, int32_t len, llama_token *tokens, int32_t n_max, bool add_special, bool parse_special) {
	return guarded([&] { return llama_tokenize(v, text, len, tokens, n_max, add_special, parse_special); });
}

extern "C" strata_call strata_token_to_piece(const struct llama_vocab *v, llama_token t, char *buf, int32_t len, int32_t lstrip, bool special) {
	return guarded([&] { return llama_token_to_piece(v, t, buf, len, lstrip, special); });
}

extern "C" strata_call strata_detokenize(const struct llama_vocab *v, const llama_token *tokens, int32_t n, char *text, int32_t len, bool remove_special, bool unparse_special) {
	return guarded([&] { return llama_detokenize(v, tokens, n, text, len, remove_special, unparse_special); });
}
