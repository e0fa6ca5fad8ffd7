/**
 * The settings that a workspace may not set until it is trusted (package.json's
 * capabilities.untrustedWorkspaces.restrictedConfigurations says the same; a test keeps them equal): the
 * model and Node the engine runs, and whether images are fetched from the network.
 */
export const RESTRICTED_KEYS = ['paligemma.modelPath', 'paligemma.nodePath', 'paligemma.allowRemoteImages', 'paligemma.backend', 'paligemma.remote.url', 'paligemma.segmentation.vaePath'] as const;
