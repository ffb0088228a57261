#include <stdio.h>
int main(void) { fprintf(stderr, "kvsteer: not built yet\n"); return 1; }
