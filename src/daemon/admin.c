/* admin.c - see admin.h: the calls through the main loop's ops table. */
#include "loophole/admin.h"

void lh_admin_reload(lh_admin *a)
{
    a->ops->reload(a);
}

void lh_admin_flush_cache(lh_admin *a)
{
    a->ops->flush_cache(a);
}

void lh_admin_wake_loops(lh_admin *a)
{
    a->ops->wake_loops(a);
}

void lh_admin_gather(const lh_admin *a, lh_snapshot *out)
{
    lh_server_collect(a->srv, out);
    a->ops->add_workers(a, out);
}
