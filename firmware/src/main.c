#include "cycles.h"
#include "protocol.h"
#include "runtime.h"

int main(void)
{
    cycles_init();
    /* A failed init is kept by the runtime glue and returned by every
     * runtime_invoke(), so the host sees it as a run error. */
    (void)runtime_init();
    protocol_announce_boot();
    protocol_serve();
}
