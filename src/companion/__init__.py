"""companion: the library behind the book.

Floors (a floor imports only the floors below it):

1. primitives: ``runtime``, ``boxes``, ``results``
2. infrastructure: ``data``, ``train``, ``viz``
3. toolkits: ``ssl``, ``quant``, ``slimmable``, ``compress``
4. papers: one package per paper (``tobias``, ``psol``, ``s3l``, ``nrs``, ``fewshot``,
   ``ssql``, ``us3l``, ``effssl``, ``vit2040``, ``efpc``)
"""

__version__ = "0.1.0"
