// SwiftPM links an executable target with `main` renamed to `<target>_main` (so that tests can
// link it); libFuzzer brings a `main` of its own. This is that renamed main: it hands control to
// libFuzzer's driver with the Swift entry point, LLVMFuzzerTestOneInput (Fuzz/Sources/FuzzEntry.swift).
#include "driver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int vitrine_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
