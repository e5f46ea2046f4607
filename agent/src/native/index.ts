/**
 * The koffi binding of libdatapath.so (agent/native/include/datapath.h), one folder:
 *   declarations.ts  every struct, prototype and constant of the header (the one place)
 *   control.ts       the control thread that runs control calls (and why)
 *   datapath.ts      Datapath, the facade the services call
 *   types.ts         the values it returns, and their decoders
 *   errors.ts        NativeError, deadlines, a stuck control thread
 */
export * from './datapath';
export * from './errors';
export * from './types';
export { DP_NAME_MAX, DP_NEXUS_FORCE, DP_NEXUS_RELEASE, DP_UUID_STR_LEN, libraryPath } from './declarations';
