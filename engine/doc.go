// Package engine ties Strata's parts together: it drives llama.cpp through
// package llama (prompt processing, the token loop, streaming) and pages an
// MoE model's experts through the genome within a memory budget (Budget,
// ExpertPager, PagedExperts). Publishing inference events on the bus and
// serving many requests at once are still to come.
package engine
