// Package engine ties Strata's parts together: it drives llama.cpp through
// package llama (prompt processing, the token loop, streaming) and, as the
// genome and bus land, pages weights and publishes inference events.
package engine
