export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'ioredis' || specifier.startsWith('ioredis/')) {
    return nextResolve(specifier.replace(/^ioredis/, 'ioredis6'), context);
  }
  return nextResolve(specifier, context);
}
