/* plugin.c: a small shared library that counter.c dlopens after a restart, to show that
 * the restored dynamic loader still works. Has its own data, bss and a constructor. */
#include <stdio.h>

static int table[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
static int initialized;

__attribute__((constructor)) static void plugin_init(void) {
    initialized = 1000;
}

/* 1000 + 2 * x + sum(table): the caller can check the answer. */
int plugin_answer(int x) {
    int s = 0;
    for (int i = 0; i < 16; i++)
        s += table[i];
    return initialized + 2 * x + s;
}

const char *plugin_name(void) {
    static char name[32];
    snprintf(name, sizeof name, "mtcp-test-plugin");
    return name;
}
