/* Stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 lacks: Rust's std (>= 1.78)
   imports ProcessPrng from it. Backed by RtlGenRandom (advapi32). */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
