import sys
from importlib.metadata import version as ver
def emit(library, version, label, text, how, ran_as=None):
    text = str(text)
    if '\t' in text or '\n' in text:
        print('NOTE multi-line: ' + repr(text), file=sys.stderr)
        text = text.replace('\t', ' ').replace('\n', ' ')
    print('\t'.join([library, version, label, text, f"ran {ran_as or library + '@' + version} ({how})"]), flush=True)
