#pragma once
#include <stddef.h>
#include <stdint.h>

/// The fuzz binary's entry point (see driver.c).
int vitrine_fuzz_main(int argc, char **argv);
