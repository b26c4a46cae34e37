package llama

// CHeapInUse exposes cHeapInUse to the external tests.
var CHeapInUse = cHeapInUse
