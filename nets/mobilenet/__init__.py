"""TF-Slim's `nets/mobilenet` package: `from nets.mobilenet import mobilenet, mobilenet_v2, mobilenet_v3`.

These modules give TF-Slim's API (`mobilenet_v2.mobilenet`, `training_scope`, `mobilenet_v3.large`, ...) over
the zoo's MobileNet v2/v3 (nets/mobilenet_v2.py, nets/mobilenet_v3.py, which register the nets).
"""
