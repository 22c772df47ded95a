/* contract.c - the workers' option tables. See contract.h. */
#include "contract.h"

#include <string.h>

#define SP_OPTION_STRUCT struct sp_api_options
const struct sp_option sp_api_option_table[] = {SP_API_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

#define SP_OPTION_STRUCT struct sp_bridge_options
const struct sp_option sp_bridge_option_table[] = {SP_BRIDGE_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

#define SP_OPTION_STRUCT struct sp_writer_options
const struct sp_option sp_writer_option_table[] = {SP_WRITER_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

#define SP_OPTION_STRUCT struct sp_consumer_options
const struct sp_option sp_consumer_option_table[] = {SP_CONSUMER_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

#define SP_OPTION_STRUCT struct sp_dashboard_options
const struct sp_option sp_dashboard_option_table[] = {SP_DASHBOARD_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

const struct sp_option *sp_contract_options(const char *program)
{
    static const struct {
        const char *program;
        const struct sp_option *table;
    } workers[] = {
        {"api", sp_api_option_table},
        {"bridge", sp_bridge_option_table},
        {"writer", sp_writer_option_table},
        {"consumer", sp_consumer_option_table},
    };
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++)
        if (!strcmp(workers[i].program, program))
            return workers[i].table;
    return NULL;
}

int sp_contract_port(const struct sp_option *opts, enum sp_from port)
{
    for (const struct sp_option *o = opts; o->name; o++)
        if (o->from == port)
            return (int)o->def_num;
    return -1;
}
