/* export.h - marks the functions of include/datapath.h as exported.
 * The library builds with -fvisibility=hidden: every public function's
 * definition carries DP_EXPORT, everything else stays internal. */
#ifndef DP_EXPORT_H
#define DP_EXPORT_H
#define DP_EXPORT __attribute__((visibility("default")))
#endif
