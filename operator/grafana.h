/* grafana.h - the Grafana dashboards of a pipeline as Grafana JSON (build_grafana.c; their
 * ConfigMaps and the data source Secret are builders in build.h). */
#ifndef OP_GRAFANA_H
#define OP_GRAFANA_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "pipeline.h"

/* The MISSION.md dashboard over Valkey (Redis data source plugin). */
cJSON *grafana_sales_dashboard(const struct pipeline *p);
/* The pipeline-health dashboard over Prometheus. */
cJSON *grafana_health_dashboard(const struct pipeline *p);
/* Grafana uids: stable, <= 40 characters. */
void grafana_uid(const struct pipeline *p, const char *suffix, char *buf, size_t cap);

#endif
