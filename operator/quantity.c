/* quantity.c - see quantity.h. */
#include "quantity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int quantity_bytes(const char *q, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"Ki", 1024.0},
        {"Mi", 1048576.0},
        {"Gi", 1073741824.0},
        {"Ti", 1099511627776.0},
        {"Pi", 1125899906842624.0},
        {"Ei", 1152921504606846976.0},
        {"k", 1e3},
        {"M", 1e6},
        {"G", 1e9},
        {"T", 1e12},
        {"P", 1e15},
        {"E", 1e18},
        {"m", 1e-3},
        {"", 1.0},
    };
    char *end;
    double v = strtod(q, &end);
    if (end == q || v < 0 || !isfinite(v))
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix)) {
            double bytes = ceil(v * units[i].mult);
            if (bytes > 9.2e18)
                return -1;
            *out = (unsigned long long)bytes;
            return 0;
        }
    return -1;
}

int quantity_cpus(const char *q)
{
    char *end;
    double v = strtod(q, &end);
    if (end == q || !isfinite(v) || v <= 0)
        return 1;
    if (!strcmp(end, "m"))
        v /= 1000.0;
    else if (*end)
        return 1;
    if (v > 64)
        return 64; /* clamped before the cast: a huge quantity does not fit an int */
    int n = (int)ceil(v - 1e-9);
    return n < 1 ? 1 : n;
}
