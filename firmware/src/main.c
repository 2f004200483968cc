#include "cycles.h"
#include "protocol.h"
#include "runtime.h"

int main(void)
{
    cycles_init();
    /* The runtime glue stores a failed init and returns it from every
     * runtime_invoke(), so the host receives it as a run error. */
    (void)runtime_init();
    protocol_announce_boot();
    protocol_serve();
}
