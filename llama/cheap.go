package llama

// #include <malloc.h>
// static size_t strata_heap_in_use(void) {
//	struct mallinfo2 mi = mallinfo2();
//	return mi.uordblks + mi.hblkhd;
// }
import "C"

// cHeapInUse reports the bytes the C allocator has handed out (glibc's
// mallinfo2: in-use arena chunks plus mmapped blocks). Tests use it to show
// that Close returns what the constructors took.
func cHeapInUse() uint64 { return uint64(C.strata_heap_in_use()) }
