/* quantity.h - Kubernetes resource quantities ("1Gi", "500m") as numbers. */
#ifndef OP_QUANTITY_H
#define OP_QUANTITY_H

/* Bytes of a quantity ("1Gi", "512M", "1.5Gi", "1073741824"); 0 or -1. */
int quantity_bytes(const char *q, unsigned long long *out);
/* Whole CPUs of a quantity, rounded up ("500m" -> 1, "2" -> 2); at least 1. */
int quantity_cpus(const char *q);

#endif
