// `timeline`: one human-readable line per event; also the event descriptions `errors` reuses.
#pragma once

#include <string>

#include "trace_event.h"

namespace awfshim::tracetool {

// "curl[3633/3634]"
std::string ProcLabel(const Event& e);
// What the event says, without time, process or event name, e.g.
// "fd=37 198.19.152.234:443 → tunnel api.contoso-aw.ghe.com (routed name)".
std::string Describe(const Event& e);
// "18:54:29.743686 copilot[29760/29774]  connect  fd=37 …\n", columns padded to fixed widths.
std::string TimelineLine(const Event& e);

}  // namespace awfshim::tracetool
