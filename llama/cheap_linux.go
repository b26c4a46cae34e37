package llama

// #include <malloc.h>
// static size_t strata_heap_in_use(void) {
//	struct mallinfo2 mi = mallinfo2();
//	return mi.uordblks + mi.hblkhd;
// }
import "C"

// CHeapInUse reports the bytes the C allocator has handed out (glibc's
// mallinfo2: in-use arena chunks plus mmapped blocks), and true; leak tests
// and soak benchmarks use it to show that llama.cpp's memory stays flat.
func CHeapInUse() (uint64, bool) { return uint64(C.strata_heap_in_use()), true }

func cHeapInUse() uint64 { n, _ := CHeapInUse(); return n }
