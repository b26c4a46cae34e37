package engine

// SeqCells is the KV cells each of e's sequences has in llama.cpp's
// context.
func SeqCells(e *Engine) int { return e.lctx.NCtxSeq() }
